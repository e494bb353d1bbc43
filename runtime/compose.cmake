# skiff_runtime_compose: compose file -> StackSpec, StackSpec <-> JSON/YAML.
# Pure (yaml-cpp, no kernel), so the CLI can validate a file without netd.
add_library(skiff_runtime_compose STATIC
  src/compose.cc
  src/compose_yaml.cc
  src/names.cc
  src/stack_json.cc
  src/units.cc)
target_include_directories(skiff_runtime_compose PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include)
target_link_libraries(skiff_runtime_compose PUBLIC skiff_common yaml-cpp nlohmann_json::nlohmann_json
  skiff_runtime_seccomp)
