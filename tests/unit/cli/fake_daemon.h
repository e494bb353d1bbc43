#pragma once
// A fake netd for the CLI's tests: a Unix socket in a fresh temp dir whose
// every connection gets one request read and one answer from a handler, and
// which keeps what each client sent. Served on its own thread until stop()
// (or destruction): stop() shuts the listener down, which wakes the blocked
// accept(), so a test that makes fewer requests than expected still ends.

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "skiff/common/fd.h"

namespace skiff::cli::fake {

// One request as the fake daemon read it.
struct Request {
  std::string raw;
  std::string method;
  std::string target;  // "/v1/nodes/x?force=1"
  std::string body;

  // The body as JSON (null when empty or not JSON).
  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false); }
};

// A whole HTTP response with a JSON body.
inline std::string jsonResponse(int status, const nlohmann::json& body) {
  const std::string text = body.dump();
  const std::string reason = status < 300 ? "OK" : status == 404 ? "Not Found" : status < 500 ? "Bad Request" : "Error";
  return "HTTP/1.1 " + std::to_string(status) + " " + reason +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(text.size()) +
         "\r\nConnection: close\r\n\r\n" + text;
}

class FakeDaemon {
 public:
  using Handler = std::function<std::string(const Request&)>;

  // Every connection gets handler(request).
  explicit FakeDaemon(Handler handler) : handler_(std::move(handler)) {
    char tmpl[] = "/tmp/skiff-cli-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    path_ = dir_ + "/netd.sock";
    listener_ = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path_.c_str(), path_.size());
    EXPECT_EQ(::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(listener_.get(), 8), 0);
    thread_ = std::thread([this] { serve(); });
  }
  // Every connection gets the same canned response.
  explicit FakeDaemon(std::string response)
      : FakeDaemon(Handler([response = std::move(response)](const Request&) { return response; })) {}

  ~FakeDaemon() {
    stop();
    std::filesystem::remove_all(dir_);
  }

  const std::string& path() const { return path_; }
  std::string host() const { return "unix://" + path_; }

  // Stops serving; the requests received, in order.
  const std::vector<Request>& requests() {
    stop();
    return requests_;
  }
  // The first request, raw ("" when none came).
  std::string received() {
    stop();
    return requests_.empty() ? std::string() : requests_.front().raw;
  }

 private:
  void stop() {
    if (!thread_.joinable()) return;
    (void)::shutdown(listener_.get(), SHUT_RDWR);
    thread_.join();
  }

  void serve() {
    while (true) {
      UniqueFd conn(::accept(listener_.get(), nullptr, nullptr));
      if (!conn) return;  // shut down
      Request request = readRequest(conn.get());
      const std::string response = handler_(request);
      requests_.push_back(std::move(request));
      // Written in two pieces so the client has to read to EOF, not once.
      const size_t half = response.size() / 2;
      (void)!::write(conn.get(), response.data(), half);
      (void)!::write(conn.get(), response.data() + half, response.size() - half);
    }
  }

  static Request readRequest(int fd) {
    Request request;
    std::string& raw = request.raw;
    char buf[4096];
    // Read until the headers and the announced body are in.
    size_t end = std::string::npos;
    while (true) {
      end = raw.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t length = 0;
        const size_t cl = raw.find("Content-Length: ");
        if (cl != std::string::npos && cl < end) length = std::stoul(raw.substr(cl + 16));
        if (raw.size() >= end + 4 + length) break;
      }
      const ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n <= 0) break;
      raw.append(buf, static_cast<size_t>(n));
    }
    const size_t sp1 = raw.find(' ');
    const size_t sp2 = sp1 == std::string::npos ? std::string::npos : raw.find(' ', sp1 + 1);
    if (sp2 != std::string::npos) {
      request.method = raw.substr(0, sp1);
      request.target = raw.substr(sp1 + 1, sp2 - sp1 - 1);
    }
    if (end != std::string::npos) request.body = raw.substr(end + 4);
    return request;
  }

  Handler handler_;
  std::string dir_, path_;
  UniqueFd listener_;
  // Written by the serving thread only, read after it was joined.
  std::vector<Request> requests_;
  std::thread thread_;
};

}  // namespace skiff::cli::fake
