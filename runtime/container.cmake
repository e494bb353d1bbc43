# skiff_runtime_container: namespaces, rootfs, cgroups v1/v2, launch/stop,
# restart-policy arithmetic, users from the image's passwd, loading seccomp
# filters (libseccomp).
set(_skiff_container_dir ${CMAKE_CURRENT_LIST_DIR})
add_library(skiff_runtime_container STATIC
  ${_skiff_container_dir}/src/mountinfo.cc
  ${_skiff_container_dir}/src/cgroup.cc
  ${_skiff_container_dir}/src/cgroup_join.cc
  ${_skiff_container_dir}/src/restart_policy.cc
  ${_skiff_container_dir}/src/container_launcher.cc
  ${_skiff_container_dir}/src/container_init.cc
  ${_skiff_container_dir}/src/container_exec.cc
  ${_skiff_container_dir}/src/privileges.cc
  ${_skiff_container_dir}/src/seccomp_load.cc
  ${_skiff_container_dir}/src/user.cc
  ${_skiff_container_dir}/src/container_files.cc
  ${_skiff_container_dir}/src/container_fake.cc)
target_include_directories(skiff_runtime_container PUBLIC ${_skiff_container_dir}/include)
target_link_libraries(skiff_runtime_container PUBLIC skiff_common nlohmann_json::nlohmann_json
  skiff_runtime_seccomp PkgConfig::LIBSECCOMP)
