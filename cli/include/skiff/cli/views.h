#pragma once
// What each `ls`/`ps` command shows: its template fields with their table
// headers, its default table (docker's columns), and the conversion of the
// daemon's JSON (netd/API.md) into rows. Pure: the clock is a parameter
// (epoch seconds), so "Running 5 seconds ago" is tested exactly.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "skiff/cli/template.h"

namespace skiff::cli {

struct ListView {
  std::vector<Field> fields;
  std::string defaultFormat;  // a `table ...` template
  std::string quietFormat;    // what -q prints
};

const ListView& serviceView();    // ID NAME MODE REPLICAS IMAGE PORTS
const ListView& taskView();       // ID NAME IMAGE NODE DESIRED STATE CURRENT STATE ERROR PORTS
const ListView& containerView();  // CONTAINER ID IMAGE COMMAND CREATED STATUS PORTS NAMES
const ListView& imageView();      // REPOSITORY TAG IMAGE ID CREATED SIZE
const ListView& networkView();    // NETWORK ID NAME DRIVER SCOPE
const ListView& stackView();      // NAME SERVICES
const ListView& nodeView();       // ID (" *" on this node) HOSTNAME STATUS AVAILABILITY MANAGER STATUS

std::vector<Row> serviceRows(const nlohmann::json& services);
// Tasks as netd lists them (newest first per slot): the first task of a slot
// keeps its name, older ones are shown as "\_ name" like docker's history.
std::vector<Row> taskRows(const nlohmann::json& tasks, double now, bool noTrunc);
std::vector<Row> containerRows(const nlohmann::json& containers, double now, bool noTrunc);
std::vector<Row> imageRows(const nlohmann::json& images, double now);
std::vector<Row> networkRows(const nlohmann::json& networks);
std::vector<Row> stackRows(const nlohmann::json& stacks);
// Nodes sorted by hostname in natural order, as docker lists them.
std::vector<Row> nodeRows(const nlohmann::json& nodes);

// A JSON value as a table cell: strings as they are, integers without a
// decimal point, arrays joined with ", ", null/missing as "".
std::string cell(const nlohmann::json& object, const std::string& key);

}  // namespace skiff::cli
