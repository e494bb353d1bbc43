#pragma once
// `skiff push` and `skiff pull` (also under `image`): netd moves the image,
// with the credentials stored for its registry.
// `skiff login` and `skiff logout`: credentials for a registry, checked
// against it (GET /v2/ with them) before they are kept in the CLI's
// config.json ($SKIFF_CONFIG/config.json, else ~/.skiff/config.json; docker's
// format, mode 0600). The registry is reached as registry::connect decides:
// HTTPS trusting <certs.d>/<host>/ca.crt ($SKIFF_CERTS_D, else
// /var/lib/skiff/certs.d), plain HTTP only for a loopback registry or one
// named with --insecure-registry. Part of the executable's command layer.

#include <CLI/CLI.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "commands.h"

namespace skiff::cli {

// Where the CLI keeps its config.json, and where registries' CAs are.
std::string configPath();
std::string certsDir();

// `stack deploy`'s images that name a registry host ("127.0.0.1:5000/a/b:1",
// "registry.example/x") and that this node's netd lacks are pulled through it
// first, with the credentials `skiff login` stored, so the stack's nodes find
// them at their manager (workers fetch images from it). Names without a host
// (docker.io's) are left to the deploy, which names a missing one. False
// when a pull failed (the error printed): the deploy is not sent.
// progress: where a pull's lines go, as `docker run` shows them on stderr
// ("Unable to find image 'X' locally", the layers, "Status: ..."); null: none.
bool pullMissingImages(const Daemon& daemon, const std::vector<std::string>& images, std::ostream* progress = nullptr);

class RegistryCommands {
 public:
  RegistryCommands(CLI::App& app, Commands& commands);
  RegistryCommands(const RegistryCommands&) = delete;
  RegistryCommands& operator=(const RegistryCommands&) = delete;

 private:
  int login() const;
  int logout() const;
  int exchange(const std::string& what) const;  // "push" or "pull"

  Commands& commands_;
  std::string image_;

  std::string server_;
  std::string username_;
  std::string password_;
  bool passwordStdin_ = false;
  std::vector<std::string> insecure_;
};

}  // namespace skiff::cli
