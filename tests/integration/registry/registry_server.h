#pragma once
// A real Docker Registry 2.8 (Debian's docker-registry) for integration
// tests: its own storage, htpasswd user alice/secret, on 127.0.0.1:PORT of
// the test binary's own network namespace, optionally with TLS from a CA made
// here. Killed (SIGKILL, by pid) when the object goes.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace skiff::registry {
namespace testfs = std::filesystem;

inline int sh(const std::string& cmd) { return std::system(cmd.c_str()); }  // NOLINT: test set-up only

inline bool accepts(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// One registry process with its own storage, users alice/secret.
class Registry {
 public:
  Registry(const testfs::path& dir, uint16_t port, bool tls) : dir_(dir), port_(port) {
    testfs::create_directories(dir_ / "data");
    if (sh("htpasswd -Bbn alice secret > " + (dir_ / "htpasswd").string() + " 2>/dev/null") != 0) return;
    std::ofstream cfg(dir_ / "config.yml");
    cfg << "version: 0.1\n"
        << "log: {level: error}\n"
        << "storage:\n  filesystem: {rootdirectory: " << (dir_ / "data").string() << "}\n"
        << "auth:\n  htpasswd: {realm: skiff-test, path: " << (dir_ / "htpasswd").string() << "}\n"
        << "http:\n  addr: 127.0.0.1:" << port_ << "\n  secret: skiff-test-secret\n";
    if (tls) {
      // A CA, and a server certificate it signs for 127.0.0.1.
      const std::string d = dir_.string();
      std::string cmd = "cd " + d +
                        " && openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=skiff-test-ca"
                        " -keyout ca.key -out ca.crt"
                        " && openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr"
                        " && printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext"
                        " && openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1"
                        " -extfile san.ext -out server.crt";
      cmd.append(" >/dev/null 2>&1");
      if (sh(cmd) != 0) return;
      cfg << "  tls: {certificate: " << d << "/server.crt, key: " << d << "/server.key}\n";
    }
    cfg.close();
    pid_ = ::fork();
    if (pid_ == 0) {
      // Its access log goes to a file beside its storage, not the test's output.
      FILE* log = std::fopen((dir_ / "registry.log").c_str(), "w");
      if (log != nullptr) {
        ::dup2(::fileno(log), 1);
        ::dup2(::fileno(log), 2);
      }
      ::execlp("docker-registry", "docker-registry", "serve", (dir_ / "config.yml").c_str(), nullptr);
      ::_exit(127);
    }
    for (int i = 0; i < 200 && !accepts(port_); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ~Registry() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  bool up() const { return pid_ > 0 && accepts(port_); }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string caFile() const { return (dir_ / "ca.crt").string(); }

 private:
  testfs::path dir_;
  uint16_t port_;
  pid_t pid_ = -1;
};

}  // namespace skiff::registry
