# GoogleTest suite. tests/unit/ runs natively and, compiled to WebAssembly, under Node; tests/native/ covers
# native-only code (importers, CLI). Python parity checks in tests/parity/ run against the native CLI.
set(BUILD_GMOCK OFF CACHE BOOL "" FORCE)
set(INSTALL_GTEST OFF CACHE BOOL "" FORCE)
if(EARSHOT_WASM AND NOT EARSHOT_WASM_THREADS)
  set(gtest_disable_pthreads ON CACHE BOOL "" FORCE)
endif()
add_subdirectory(/usr/src/googletest ${CMAKE_BINARY_DIR}/googletest EXCLUDE_FROM_ALL)

file(GLOB EARSHOT_UNIT_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/unit/*_test.cc)
set(EARSHOT_TEST_SOURCES ${EARSHOT_UNIT_TESTS})
if(NOT EARSHOT_WASM)
  file(GLOB EARSHOT_NATIVE_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/native/*_test.cc)
  list(APPEND EARSHOT_TEST_SOURCES ${EARSHOT_NATIVE_TESTS})
endif()

if(EARSHOT_TEST_SOURCES)
  add_executable(earshot_tests ${EARSHOT_TEST_SOURCES})
  target_include_directories(earshot_tests PRIVATE ${CMAKE_SOURCE_DIR}/tests)
  target_compile_definitions(earshot_tests PRIVATE
    EARSHOT_SOURCE_DIR="${CMAKE_SOURCE_DIR}" EARSHOT_BINARY_DIR="${CMAKE_BINARY_DIR}")
  target_compile_options(earshot_tests PRIVATE ${EARSHOT_WARNINGS})
  if(EARSHOT_WASM)
    target_link_libraries(earshot_tests PRIVATE earshot_engine gtest_main)
    # NODERAWFS: tests read fixtures from the source tree through Node's fs.
    target_link_options(earshot_tests PRIVATE
      -sNODERAWFS=1 -sEXIT_RUNTIME=1 -sALLOW_MEMORY_GROWTH=1 -sENVIRONMENT=node -sABORTING_MALLOC=0)
    if(EARSHOT_WASM_THREADS)
      # main() runs on a pthread; joined workers go back to the pool asynchronously (through the main JS thread),
      # so the pool has room for main, a full engine pool, the tests' own extra thread and workers in transit.
      math(EXPR EARSHOT_TEST_POOL_SIZE "2 * ${EARSHOT_WASM_POOL_SIZE} + 2")
      target_link_options(earshot_tests PRIVATE -sPROXY_TO_PTHREAD=1 -sPTHREAD_POOL_SIZE=${EARSHOT_TEST_POOL_SIZE})
    endif()
    add_test(NAME earshot_tests_wasm COMMAND node --no-experimental-fetch $<TARGET_FILE:earshot_tests>)
  else()
    target_link_libraries(earshot_tests PRIVATE earshot_tools gtest_main)
    add_test(NAME earshot_tests COMMAND earshot_tests)
  endif()
endif()

# Parity and end-to-end checks written in Python (run with Debian's /usr/bin/python3, which has torch).
if(NOT EARSHOT_WASM AND TARGET earshot)
  file(GLOB EARSHOT_PY_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/parity/test_*.py)
  foreach(py ${EARSHOT_PY_TESTS})
    get_filename_component(name ${py} NAME_WE)
    add_test(NAME ${name} COMMAND /usr/bin/python3 ${py}
      --earshot $<TARGET_FILE:earshot> --work-dir ${CMAKE_BINARY_DIR}/parity/${name})
  endforeach()
endif()
