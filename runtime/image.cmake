# skiff_runtime_image: Dockerfile-subset builder + content-addressed image store.
add_library(skiff_runtime_image STATIC
  ${CMAKE_CURRENT_SOURCE_DIR}/src/dockerfile.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/image_fs.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/image_store.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/image_archive.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/layer_tar.cc)
target_include_directories(skiff_runtime_image PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include)
# skiff_runtime_compose for the one duration rule (HEALTHCHECK --interval as
# compose's healthcheck.interval).
# Layers are gzip tars (src/layer_tar.cc): libarchive for the tar, zlib for gzip.
target_link_libraries(skiff_runtime_image PUBLIC skiff_common nlohmann_json::nlohmann_json
                      PRIVATE skiff_runtime_compose OpenSSL::Crypto PkgConfig::LIBARCHIVE ZLIB::ZLIB)
