#include "skiff/cli/stats.h"

#include <cstdio>

#include "skiff/cli/format.h"

namespace skiff::cli {

namespace {

using nlohmann::json;

// A count: a JSON integer that is not negative (however it was written).
std::optional<uint64_t> countOf(const json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return static_cast<uint64_t>(v.get<int64_t>());
  return std::nullopt;
}

uint64_t unsignedAt(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() ? countOf(*it).value_or(0) : 0;
}

std::string textAt(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string fixed(double value, const char* format) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, value);
  return buf;
}

}  // namespace

std::vector<StatsSample> parseStatsAnswer(const json& answer) {
  std::vector<StatsSample> out;
  if (!answer.is_array()) return out;
  for (const auto& row : answer) {
    if (!row.is_object()) continue;
    StatsSample s;
    s.id = textAt(row, "id");
    s.name = textAt(row, "name");
    s.service = textAt(row, "service");
    s.stack = textAt(row, "stack");
    if (auto node = row.find("node"); node != row.end() && node->is_object()) {
      s.nodeId = textAt(*node, "id");
      s.node = textAt(*node, "hostname");
    }
    s.running = row.value("running", false);
    if (auto cpu = row.find("cpuNs"); cpu != row.end()) s.cpuNs = countOf(*cpu);
    s.memoryUsage = unsignedAt(row, "memoryUsage");
    s.memoryLimit = unsignedAt(row, "memoryLimit");
    s.pids = unsignedAt(row, "pids");
    if (auto at = row.find("sampledAt"); at != row.end() && at->is_number_integer()) s.sampledAtNs = at->get<int64_t>();
    s.error = textAt(row, "error");
    if (auto mesh = row.find("mesh"); mesh != row.end() && mesh->is_object()) {
      s.connections = unsignedAt(*mesh, "connections");
      s.active = unsignedAt(*mesh, "active");
      s.bytesIn = unsignedAt(*mesh, "bytesIn");
      s.bytesOut = unsignedAt(*mesh, "bytesOut");
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::optional<double> cpuPercent(const StatsSample& before, const StatsSample& after) {
  if (!before.hasUsage() || !after.hasUsage() || !before.cpuNs || !after.cpuNs) return std::nullopt;
  if (after.sampledAtNs <= before.sampledAtNs || *after.cpuNs < *before.cpuNs) return std::nullopt;
  const double cpu = static_cast<double>(*after.cpuNs - *before.cpuNs);
  const double wall = static_cast<double>(after.sampledAtNs - before.sampledAtNs);
  return cpu / wall * 100.0;
}

std::optional<double> perSecond(uint64_t before, uint64_t after, double seconds) {
  if (seconds <= 0 || after < before) return std::nullopt;
  return static_cast<double>(after - before) / seconds;
}

std::string percentCell(std::optional<double> percent) { return percent ? fixed(*percent, "%.2f%%") : "--"; }

std::string memUsageCell(uint64_t usage, uint64_t limit) {
  std::string out = binarySize(static_cast<double>(usage));
  out += " / ";
  out += binarySize(static_cast<double>(limit));
  return out;
}

std::string ioCell(uint64_t in, uint64_t out) {
  std::string cell = humanSize(static_cast<double>(in));
  cell += " / ";
  cell += humanSize(static_cast<double>(out));
  return cell;
}

const ListView& statsView() {
  static const ListView view{
      {{"Container", "CONTAINER"},
       {"ID", "CONTAINER ID"},
       {"Name", "NAME"},
       {"Service", "SERVICE"},
       {"Stack", "STACK"},
       {"Node", "NODE"},
       {"CPUPerc", "CPU %"},
       {"MemUsage", "MEM USAGE / LIMIT"},
       {"MemPerc", "MEM %"},
       {"NetIO", "NET I/O"},
       {"PIDs", "PIDS"},
       {"Connections", "CONNS"},
       {"RequestsPerSec", "REQ/S"},
       {"BytesPerSec", "NET I/O/S"}},
      "table {{.ID}}\t{{.Name}}\t{{.Service}}\t{{.Node}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}"
      "\t{{.PIDs}}\t{{.Connections}}\t{{.RequestsPerSec}}\t{{.BytesPerSec}}",
      "{{.ID}}"};
  return view;
}

std::vector<Row> StatsTracker::observe(const std::vector<StatsSample>& samples, double seconds) {
  // 0 before the first answer: perSecond has no rate for it.
  const double elapsed = havePrevious_ ? seconds - previousAt_ : 0;
  std::map<std::string, Seen> seen;
  std::vector<Row> rows;
  for (size_t i = 0; i < samples.size(); ++i) {
    const StatsSample& s = samples[i];
    Seen now{s, std::nullopt};
    const Seen* before = nullptr;
    if (auto it = previous_.find(s.id); it != previous_.end()) before = &it->second;
    std::optional<double> reqs, in, out;
    if (before != nullptr) {
      if (s.hasUsage() && before->sample.hasUsage() && s.sampledAtNs == before->sample.sampledAtNs) {
        // No new reading from its node since (a worker between heartbeats):
        // the last figure stands.
        now.cpu = before->cpu;
      } else {
        now.cpu = cpuPercent(before->sample, s);
      }
      reqs = perSecond(before->sample.connections, s.connections, elapsed);
      in = perSecond(before->sample.bytesIn, s.bytesIn, elapsed);
      out = perSecond(before->sample.bytesOut, s.bytesOut, elapsed);
    }
    const bool usage = s.hasUsage();
    std::optional<double> memPerc;
    if (usage && s.memoryLimit > 0)
      memPerc = static_cast<double>(s.memoryUsage) / static_cast<double>(s.memoryLimit) * 100.0;
    const std::string shortOrFull = noTrunc_ ? s.id : shortId(s.id);
    std::string bytesPerSec = "--";
    if (in && out) {
      bytesPerSec = humanSize(*in);
      bytesPerSec += "/s / ";
      bytesPerSec += humanSize(*out);
      bytesPerSec += "/s";
    }
    rows.push_back(Row{{"Container", i < given_.size() ? given_[i] : shortOrFull},
                       {"ID", shortOrFull},
                       {"Name", s.name},
                       {"Service", s.service},
                       {"Stack", s.stack},
                       {"Node", s.node},
                       {"CPUPerc", percentCell(now.cpu)},
                       {"MemUsage", usage ? memUsageCell(s.memoryUsage, s.memoryLimit) : "-- / --"},
                       {"MemPerc", percentCell(memPerc)},
                       {"NetIO", ioCell(s.bytesIn, s.bytesOut)},
                       {"PIDs", usage ? std::to_string(s.pids) : "--"},
                       {"Connections", std::to_string(s.active)},
                       {"RequestsPerSec", reqs ? fixed(*reqs, "%.1f") : "--"},
                       {"BytesPerSec", bytesPerSec}});
    seen[s.id] = std::move(now);
  }
  previous_ = std::move(seen);
  previousAt_ = seconds;
  havePrevious_ = true;
  return rows;
}

std::string statsFrame(const std::string& table, bool terminal, bool first) {
  if (!terminal) return table;
  std::string out = first ? "\x1b[2J\x1b[H" : "\x1b[H";
  size_t start = 0;
  while (start < table.size()) {
    const size_t nl = table.find('\n', start);
    const size_t end = nl == std::string::npos ? table.size() : nl;
    out.append(table, start, end - start);
    out += "\x1b[K\n";
    start = end + 1;
  }
  out += "\x1b[J";
  return out;
}

}  // namespace skiff::cli
