#pragma once
// `skiff swarm ...` (init, join, join-token, leave) and `skiff node ...` (ls,
// inspect, update, rm, ps): docker's flags and texts over netd's swarm and
// node routes (netd/API.md). The texts and request bodies are pure functions
// in skiff/cli/swarm.h; this file only ties them to flags and the daemon.
// Part of the executable's command layer (it needs CLI11).

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "commands.h"
#include "skiff/cli/list.h"
#include "skiff/cli/swarm.h"

namespace skiff::cli {

// "self" -> this node's ID, from GET /v1/info (docker's node.Reference); any
// other name unchanged. nullopt (error printed) when this node is in no swarm.
std::optional<std::string> resolveNodeName(const Daemon& daemon, const std::string& name);

// Registers the commands on construction; it holds their flags, so it must
// outlive app.parse() and the action run after it.
class SwarmCommands {
 public:
  SwarmCommands(CLI::App& app, Commands& commands);
  SwarmCommands(const SwarmCommands&) = delete;
  SwarmCommands& operator=(const SwarmCommands&) = delete;

 private:
  void addSwarm(CLI::App& app);
  void addNode(CLI::App& app);

  int init() const;
  int joinToken() const;
  int join() const;
  int leave() const;
  int nodeUpdate() const;
  int nodeRm() const;
  int nodePs() const;

  Commands& commands_;

  std::string advertiseAddr_;
  std::string listenAddr_{kDefaultListenAddr};
  std::string role_;
  bool rotate_ = false;
  bool quiet_ = false;
  std::string token_;
  std::string remoteAddr_;
  bool force_ = false;
  NodeUpdateFlags update_;
  std::string node_;
  std::vector<std::string> nodes_;
  ListFlags psFlags_;
};

}  // namespace skiff::cli
