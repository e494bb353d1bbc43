#include "registry_commands.h"

#include <termios.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "skiff/cli/args.h"
#include "skiff/registry/credentials.h"
#include "skiff/registry/registry.h"

namespace skiff::cli {
namespace {

// A line from the terminal (without echo for a password); nullopt at EOF.
std::optional<std::string> prompt(const std::string& text, bool secret) {
  std::cerr << text << std::flush;
  termios old{};
  const bool tty = ::isatty(STDIN_FILENO) == 1 && ::tcgetattr(STDIN_FILENO, &old) == 0;
  if (secret && tty) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string line;
  const bool got = static_cast<bool>(std::getline(std::cin, line));
  if (secret && tty) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::cerr << "\n";
  }
  if (!got) return std::nullopt;
  return line;
}

// "127.0.0.1:5000" from "127.0.0.1:5000", "http://127.0.0.1:5000/" or
// "https://127.0.0.1:5000/v2/": docker accepts all three.
std::string serverName(std::string s) {
  for (const char* scheme : {"https://", "http://"}) {
    if (s.rfind(scheme, 0) == 0) s = s.substr(std::string(scheme).size());
  }
  auto slash = s.find('/');
  return slash == std::string::npos ? s : s.substr(0, slash);
}

}  // namespace

std::string configPath() {
  const char* dir = std::getenv("SKIFF_CONFIG");
  if (dir != nullptr && *dir != 0) return std::string(dir) + "/config.json";
  const char* home = std::getenv("HOME");
  std::string base = home != nullptr && *home != 0 ? home : "/root";
  return base + "/.skiff/config.json";
}

std::string certsDir() {
  const char* dir = std::getenv("SKIFF_CERTS_D");
  return dir != nullptr && *dir != 0 ? dir : "/var/lib/skiff/certs.d";
}

RegistryCommands::RegistryCommands(CLI::App& app, Commands& commands) : commands_(commands) {
  auto* login = app.add_subcommand("login", "Log in to a registry");
  login->add_option("SERVER", server_, "The registry (host[:port])")->required();
  login->add_option("-u,--username", username_, "Username");
  login->add_option("-p,--password", password_, "Password");
  login->add_flag("--password-stdin", passwordStdin_, "Take the password from stdin");
  login->add_option("--insecure-registry", insecure_,
                    "Allow plain HTTP to this registry (host[:port]) when HTTPS does not answer");
  commands.bind(login, [this] { return this->login(); });

  auto* logout = app.add_subcommand("logout", "Log out from a registry");
  logout->add_option("SERVER", server_, "The registry (host[:port])")->required();
  commands.bind(logout, [this] { return this->logout(); });

  // docker's top-level shortcuts, and the same under `image`.
  CLI::App* image = app.get_subcommand("image");
  for (CLI::App* parent : {&app, image}) {
    auto* push = parent->add_subcommand("push", "Upload an image to a registry");
    push->add_option("NAME[:TAG]", image_, "The image, named as in the registry")->required();
    commands.bind(push, [this] { return this->exchange("push"); });
    auto* pull = parent->add_subcommand("pull", "Download an image from a registry");
    pull->add_option("NAME[:TAG|@DIGEST]", image_, "The image in the registry")->required();
    commands.bind(pull, [this] { return this->exchange("pull"); });
  }
}

// netd moves the layers (it owns the image store); the credentials `skiff
// login` stored for the registry go with the request, and nowhere else.
namespace {

// The pull/push body: the reference and the stored credentials of its registry.
std::optional<nlohmann::json> exchangeBody(const std::string& image) {
  auto ref = registry::parseReference(image);
  if (!ref.ok()) {
    std::cerr << "Error: " << ref.error().message << "\n";
    return std::nullopt;
  }
  nlohmann::json body{{"name", ref->str()}};
  registry::CredentialStore store(configPath());
  auto credentials = store.get(ref->registry);
  if (!credentials.ok()) {
    std::cerr << "Error: " << credentials.error().message << "\n";
    return std::nullopt;
  }
  if (*credentials) body["auth"] = {{"username", (*credentials)->username}, {"password", (*credentials)->password}};
  return body;
}

// "host:5000/x", "registry.example/x", "localhost/x": the first part names a host.
bool namesRegistryHost(const std::string& image) {
  auto slash = image.find('/');
  if (slash == std::string::npos) return false;
  const std::string first = image.substr(0, slash);
  return first == "localhost" || first.find('.') != std::string::npos || first.find(':') != std::string::npos;
}

}  // namespace

bool pullMissingImages(const Daemon& daemon, const std::vector<std::string>& images, std::ostream* progress) {
  std::set<std::string> wanted;
  for (const auto& image : images) {
    if (namesRegistryHost(image)) wanted.insert(image);
  }
  if (wanted.empty()) return true;
  auto list = daemon.call("GET", "/v1/images");
  if (!list) return false;
  std::set<std::string> local;
  for (const auto& img : *list) {
    if (img.is_object()) local.insert(img.value("repository", "") + ":" + img.value("tag", ""));
  }
  for (const auto& image : wanted) {
    auto named = normalizeImageTag(image);
    if (named.ok() && image.find('@') == std::string::npos && local.count(*named)) continue;
    auto body = exchangeBody(image);
    if (!body) return false;
    if (progress != nullptr) *progress << "Unable to find image '" << image << "' locally\n" << std::flush;
    auto answer = daemon.call("POST", "/v1/images/pull", *body);
    if (!answer) return false;
    if (progress != nullptr) printMessages(*answer, "log", *progress);
  }
  return true;
}

int RegistryCommands::exchange(const std::string& what) const {
  auto body = exchangeBody(image_);
  if (!body) return 1;
  auto answer = commands_.daemon().call("POST", "/v1/images/" + what, *body);
  if (!answer) return 1;
  printMessages(*answer, "log");
  return 0;
}

int RegistryCommands::login() const {
  const std::string server = serverName(server_);
  std::string user = username_, password = password_;
  if (!password.empty() && passwordStdin_) {
    std::cerr << "Error: --password and --password-stdin are mutually exclusive\n";
    return 1;
  }
  if (passwordStdin_) {
    if (user.empty()) {
      std::cerr << "Error: Must provide --username with --password-stdin\n";
      return 1;
    }
    std::string all((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    while (!all.empty() && (all.back() == '\n' || all.back() == '\r')) all.pop_back();
    password = all;
  } else if (!password.empty()) {
    std::cerr << "WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n";
  }
  if (user.empty() || password.empty()) {
    if (::isatty(STDIN_FILENO) != 1) {
      std::cerr << "Error: Cannot perform an interactive login from a non TTY device\n";
      return 1;
    }
    if (user.empty()) {
      auto u = prompt("Username: ", false);
      if (!u || u->empty()) {
        std::cerr << "Error: Username is required\n";
        return 1;
      }
      user = *u;
    }
    auto p = prompt("Password: ", true);
    if (!p || p->empty()) {
      std::cerr << "Error: Password is required\n";
      return 1;
    }
    password = *p;
  }
  registry::EndpointPolicy policy{certsDir(), insecure_};
  auto connected = registry::connect(server, policy, registry::Credentials{user, password});
  if (!connected.ok()) {
    std::cerr << "Error response from registry: " << connected.error().message << "\n";
    return 1;
  }
  registry::CredentialStore store(configPath());
  if (auto st = store.put(server, {user, password}); !st.ok()) {
    std::cerr << "Error saving credentials: " << st.error().message << "\n";
    return 1;
  }
  std::cout << "Login Succeeded\n";
  return 0;
}

int RegistryCommands::logout() const {
  const std::string server = serverName(server_);
  registry::CredentialStore store(configPath());
  auto erased = store.erase(server);
  if (!erased.ok()) {
    std::cerr << "Error: " << erased.error().message << "\n";
    return 1;
  }
  if (!*erased) {
    std::cout << "Not logged in to " << server << "\n";
    return 0;
  }
  std::cout << "Removing login credentials for " << server << "\n";
  return 0;
}

}  // namespace skiff::cli
