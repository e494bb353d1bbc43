#include <fstream>
#include <random>
#include <regex>
#include <sstream>

#include "orchestrator_impl.h"

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
  auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count() %
               1000000000;
  char frac[16];
  std::snprintf(frac, sizeof frac, ".%09lldZ", static_cast<long long>(nanos));
  return std::string(buf) + frac;
}

std::string portsText(const std::vector<runtime::PortSpec>& ports) {
  std::string out;
  for (const auto& p : ports) {
    if (p.published == 0) continue;
    if (!out.empty()) out += ", ";
    out += (p.hostIp.empty() ? "*" : p.hostIp) + ":" + std::to_string(p.published) + "->" +
           std::to_string(p.target) + "/" + p.protocol;
  }
  return out;
}

std::string listenerName(const runtime::PortSpec& p) {
  std::string name = std::to_string(p.published) + "/" + p.protocol;
  // The bind address is part of the name, so a redeploy that changes it
  // replaces the listener instead of keeping the old address.
  if (!p.hostIp.empty()) name += "@" + p.hostIp;
  return name;
}

bool validStackName(const std::string& name) {
  static const std::regex re("^[a-zA-Z0-9][a-zA-Z0-9_.-]*$");
  return std::regex_match(name, re);
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

std::string expandTemplate(std::string text, const std::map<std::string, std::string>& values) {
  static const std::regex re(R"(\{\{\s*(\.[A-Za-z.]+)\s*\}\})");
  std::string out;
  std::sregex_iterator it(text.begin(), text.end(), re), end;
  size_t last = 0;
  for (; it != end; ++it) {
    out += text.substr(last, it->position() - last);
    auto found = values.find((*it)[1]);
    out += found != values.end() ? found->second : it->str();
    last = it->position() + it->length();
  }
  return out + text.substr(last);
}

TimerHandle* startTimer(uv_loop_t* loop, std::chrono::milliseconds after,
                        std::function<void()> fire) {
  auto* h = new TimerHandle;
  uv_timer_init(loop, &h->timer);
  h->timer.data = h;
  h->fire = std::move(fire);
  uv_timer_start(
      &h->timer,
      [](uv_timer_t* t) {
        auto* self = static_cast<TimerHandle*>(t->data);
        auto callback = std::move(self->fire);  // it may cancel (close) this very timer
        self->fire = nullptr;
        if (callback) callback();
      },
      static_cast<uint64_t>(std::max<int64_t>(0, after.count())), 0);
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
