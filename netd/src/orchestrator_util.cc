#include <fstream>
#include <random>
#include <sstream>

#include "orchestrator_impl.h"
#include "skiff/common/log.h"

namespace skiff::netd {
namespace {

std::string randomId(size_t len, const char* alphabet) {
  static std::random_device rd;
  static std::mt19937_64 gen(rd());
  size_t n = std::char_traits<char>::length(alphabet);
  std::uniform_int_distribution<size_t> pick(0, n - 1);
  std::string out;
  for (size_t i = 0; i < len; i++) out += alphabet[pick(gen)];
  return out;
}

}  // namespace

std::string newContainerId() { return randomId(64, "0123456789abcdef"); }
std::string newObjectId() { return randomId(25, "abcdefghijklmnopqrstuvwxyz0123456789"); }

std::string rfc3339(SysClock::time_point t) {
  if (t.time_since_epoch().count() == 0) return "0001-01-01T00:00:00Z";
  std::time_t secs = SysClock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count() % 1000000000;
  char frac[16];
  std::snprintf(frac, sizeof frac, ".%09lldZ", static_cast<long long>(nanos));
  return std::string(buf) + frac;
}

std::string portsText(const std::vector<runtime::PortSpec>& ports) {
  std::string out;
  for (const auto& p : ports) {
    if (p.published == 0) continue;
    if (!out.empty()) out += ", ";
    out += (p.hostIp.empty() ? "*" : p.hostIp) + ":" + std::to_string(p.published) + "->" + std::to_string(p.target) +
           "/" + runtime::toString(p.protocol);
  }
  return out;
}

std::string listenerName(const runtime::PortSpec& p) {
  std::string name = std::to_string(p.published);
  name += '/';
  name += runtime::toString(p.protocol);
  // The bind address is part of the name, so a redeploy that changes it
  // replaces the listener instead of keeping the old address.
  if (!p.hostIp.empty()) name += "@" + p.hostIp;
  return name;
}

// Hand-written scanners, not std::regex: libstdc++'s regex executor recurses
// once per character, so a 30k-character name or template from the API or a
// stored stack overflowed the stack and ended netd. These run in linear time
// and constant stack.
bool validStackName(const std::string& name) {
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
  if (name.empty() || !alnum(name[0])) return false;
  for (char c : name) {
    if (!alnum(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

bool validPortSuffix(const std::string& hostPort) {
  const size_t colon = hostPort.find(':');
  if (colon == std::string::npos) return true;
  const std::string port = hostPort.substr(colon + 1);
  if (port.empty() || port.size() > 5) return false;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
  }
  const int value = std::stoi(port);
  return value >= 1 && value <= 65535;
}

std::string readLogTail(const std::string& path, size_t maxBytes) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return "";
  auto size = static_cast<size_t>(in.tellg());
  size_t from = size > maxBytes ? size - maxBytes : 0;
  in.seekg(static_cast<std::streamoff>(from));
  std::string out(size - from, '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  out.resize(static_cast<size_t>(in.gcount()));
  // Start at a whole line when the head was cut.
  if (from > 0) {
    auto nl = out.find('\n');
    out.erase(0, nl == std::string::npos ? out.size() : nl + 1);
  }
  return out;
}

std::string readLogFrom(const std::string& path, uint64_t offset, uint64_t* end, size_t maxBytes) {
  *end = offset;
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return "";
  auto size = static_cast<uint64_t>(in.tellg());
  if (offset >= size) return "";
  const uint64_t want = std::min<uint64_t>(size - offset, maxBytes);
  in.seekg(static_cast<std::streamoff>(offset));
  std::string out(want, '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  out.resize(static_cast<size_t>(in.gcount()));
  *end = offset + out.size();
  return out;
}

namespace {

bool isTemplateSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }
bool isFieldChar(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.'; }

// Matches "{{ .Field.Path }}" at text[at]: on success sets *key to
// ".Field.Path" and returns the index just past "}}"; else returns npos. The
// scan never passes a '{', so trying it at every "{{" stays linear.
size_t matchPlaceholder(const std::string& text, size_t at, std::string* key) {
  size_t i = at + 2;
  while (i < text.size() && isTemplateSpace(text[i])) i++;
  if (i >= text.size() || text[i] != '.') return std::string::npos;
  size_t start = i++;
  while (i < text.size() && isFieldChar(text[i])) i++;
  if (i == start + 1) return std::string::npos;  // "." alone
  size_t end = i;
  while (i < text.size() && isTemplateSpace(text[i])) i++;
  if (text.compare(i, 2, "}}") != 0) return std::string::npos;
  key->assign(text, start, end - start);
  return i + 2;
}

}  // namespace

std::string expandTemplate(std::string text, const std::map<std::string, std::string>& values) {
  // Unknown placeholders and anything that is not one stay as written.
  std::string out;
  out.reserve(text.size());
  std::string key;
  size_t i = 0;
  while (i < text.size()) {
    size_t open = text.find("{{", i);
    if (open == std::string::npos) break;
    size_t next = matchPlaceholder(text, open, &key);
    if (next == std::string::npos) {
      out.append(text, i, open + 1 - i);  // the first '{'; the second may open one
      i = open + 1;
      continue;
    }
    out.append(text, i, open - i);
    auto found = values.find(key);
    if (found != values.end())
      out += found->second;
    else
      out.append(text, open, next - open);
    i = next;
  }
  out.append(text, std::min(i, text.size()), std::string::npos);
  return out;
}

TimerHandle* startTimer(uv_loop_t* loop, std::chrono::milliseconds after, std::function<void()> fire) {
  auto* h = new TimerHandle;
  uv_timer_init(loop, &h->timer);
  h->timer.data = h;
  h->fire = std::move(fire);
  // The loop's time is that of its last turn, so a callback that ran long
  // since would cut `after` short: count from now. Not by uv_update_time():
  // a timer callback that moves the loop's clock makes every timer that fell
  // due meanwhile run in the same pass, and timers that re-arm themselves
  // from callbacks slower than their period (heartbeats, under a sanitizer)
  // would then never let the loop reach its I/O. libuv's clock may be the
  // coarse one, up to a millisecond behind uv_hrtime(): that much is forgiven.
  const uint64_t now = uv_hrtime() / 1000000;
  const uint64_t late = now > uv_now(loop) + 1 ? now - uv_now(loop) - 1 : 0;
  uv_timer_start(
      &h->timer,
      [](uv_timer_t* t) {
        auto* self = static_cast<TimerHandle*>(t->data);
        auto callback = std::move(self->fire);  // it may cancel (close) this very timer
        self->fire = nullptr;
        if (!callback) return;
        // Nothing may leave a libuv callback: a throw here would end netd.
        // The one operation this timer stood for fails; the loop goes on.
        try {
          callback();
        } catch (const std::exception& e) {
          log::error("netd", "timer callback failed: ", e.what());
        } catch (...) {
          log::error("netd", "timer callback failed with an unknown exception");
        }
      },
      static_cast<uint64_t>(std::max<int64_t>(0, after.count())) + late, 0);
  return h;
}

void cancelTimer(TimerHandle*& h) {
  if (h == nullptr) return;
  uv_timer_stop(&h->timer);
  h->fire = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&h->timer),
           [](uv_handle_t* handle) { delete static_cast<TimerHandle*>(handle->data); });
  h = nullptr;
}

}  // namespace skiff::netd
