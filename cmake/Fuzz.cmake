# libFuzzer targets (configure with CXX=clang++ -DEARSHOT_FUZZ=ON). Each tests/fuzz/<name>_fuzz.cc becomes a
# binary; scripts/fuzz.sh runs them.
file(GLOB EARSHOT_FUZZERS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/*_fuzz.cc)
foreach(src ${EARSHOT_FUZZERS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_link_libraries(${name} PRIVATE earshot_engine)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
endforeach()
