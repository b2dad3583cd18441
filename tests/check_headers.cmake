cmake_minimum_required(VERSION 3.25)  # IN_LIST and the other policies of the project
# Compiles every public header under HEADER_ROOT/cct alone (a one-line translation unit that includes
# only it) with -fsyntax-only, and fails naming each header that does not compile by itself.
# Run by ctest as `cmake -DCXX=... -DINCLUDE_DIRS=a|b -DFLAGS=f|g -DHEADER_ROOT=... -DWORK_DIR=...
# [-DSHARD=i -DSHARDS=n] -P`: with SHARDS, only the headers whose sorted index is SHARD modulo SHARDS, so
# ctest can run the shards side by side with the other tests.
#
# Speed: parsing the heavy system headers is most of each check: <Eigen/Core> over a second, <immintrin.h>
# (which the run-time-dispatched kernels need) over half a second. (<filesystem> costs almost as much,
# but each combination is one more precompiled header of about 5 s: with it the precompiling ate the
# gain.) A header that reaches one of them through its own includes is checked with those heavy headers
# precompiled (GCC's -include of a .gch), which changes nothing for it: what it uses from them, or from
# the standard headers they bring, is there either way once its own includes have run. Headers that reach none are compiled exactly alone,
# so a missing standard include shows there. With -DPRECOMPILE_KEY=eigen (or immintrin, eigen_immintrin)
# and -DPCH_DIR the script only builds that precompiled header, PCH_DIR/<key>.hpp.gch, with the
# compiler's dependency list beside it (<key>.hpp.gch.d): the test build runs it for each combination,
# so the precompiled headers are build products, rebuilt when a file they read changes. A shard that
# finds one missing in PCH_DIR (or runs without PCH_DIR) precompiles its own copy into WORK_DIR.
#
# Memo (-DMEMO_DIR=..., optional): a check that passed is recorded there with everything it read, taken
# from the compiler's own dependency list (-MD): a content hash for each of cct's files, size and
# modification time for each system file, and the same for the files behind its precompiled header,
# under a key of the compiler's version, the flags, the header's name and its cct includes' contents
# (memo_path). A later run whose header finds its record with every entry unchanged reports it passed
# without compiling it again (so does a fresh clone, whose files have new times but the same contents);
# any edit, a new compiler or an updated system header makes it compile again. A failed check is never
# recorded.
set(required_arguments CXX INCLUDE_DIRS HEADER_ROOT WORK_DIR)
if(DEFINED PRECOMPILE_KEY)
  set(required_arguments CXX INCLUDE_DIRS HEADER_ROOT PCH_DIR)
endif()
foreach(required ${required_arguments})
  if(NOT DEFINED ${required})
    message(FATAL_ERROR "check_headers.cmake: -D${required}=... is required")
  endif()
endforeach()
if(NOT DEFINED SHARDS)
  set(SHARDS 1)
  set(SHARD 0)
endif()
string(REPLACE "|" ";" include_dirs "${INCLUDE_DIRS}")
string(REPLACE "|" ";" flags "${FLAGS}")
set(include_args)
foreach(dir ${include_dirs})
  list(APPEND include_args "-I${dir}")
endforeach()

if(MEMO_DIR)
  execute_process(COMMAND ${CXX} --version OUTPUT_VARIABLE compiler_version RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "check_headers.cmake: `${CXX} --version` failed")
  endif()
  file(MAKE_DIRECTORY ${MEMO_DIR})
endif()

file(GLOB_RECURSE headers RELATIVE ${HEADER_ROOT} ${HEADER_ROOT}/cct/*.hpp)
list(SORT headers)
list(LENGTH headers header_count)
if(header_count EQUAL 0)
  message(FATAL_ERROR "check_headers.cmake: no headers found under ${HEADER_ROOT}/cct")
endif()

# The heavy system headers, each with the include lines that reach it (any Eigen module reaches Core).
set(heavy_names eigen immintrin)
set(heavy_eigen_header "Eigen/Core")
set(heavy_eigen_regex "^#include <Eigen/")
set(heavy_immintrin_header "immintrin.h")
set(heavy_immintrin_regex "^#include <immintrin\\.h>")

# Which heavy headers each header reaches: through its own quoted includes, followed to a fixed point.
foreach(header ${headers})
  file(STRINGS ${HEADER_ROOT}/${header} lines REGEX "^#include [\"<]")
  get_filename_component(folder ${header} DIRECTORY)
  set(deps_${header})
  set(reach_${header})
  foreach(line ${lines})
    foreach(name ${heavy_names})
      if(line MATCHES "${heavy_${name}_regex}")
        list(APPEND reach_${header} ${name})
      endif()
    endforeach()
    if(line MATCHES "^#include \"([^\"]+)\"")
      get_filename_component(dep "${HEADER_ROOT}/${folder}/${CMAKE_MATCH_1}" ABSOLUTE)
      file(RELATIVE_PATH dep ${HEADER_ROOT} ${dep})
      list(APPEND deps_${header} ${dep})
    endif()
  endforeach()
endforeach()
set(changed TRUE)
while(changed)
  set(changed FALSE)
  foreach(header ${headers})
    foreach(dep ${deps_${header}})
      foreach(name ${reach_${dep}})
        if(NOT name IN_LIST reach_${header})
          list(APPEND reach_${header} ${name})
          set(changed TRUE)
        endif()
      endforeach()
    endforeach()
  endforeach()
endwhile()

# One precompiled header per combination of heavy headers that some header reaches, named by it
# ("eigen_immintrin"), in the order of heavy_names.
set(combinations)
foreach(header ${headers})
  set(key)
  foreach(name ${heavy_names})
    if(name IN_LIST reach_${header})
      list(APPEND key ${name})
    endif()
  endforeach()
  list(JOIN key "_" key)
  set(key_${header} "${key}")
  if(NOT key STREQUAL "" AND NOT key IN_LIST combinations)
    list(APPEND combinations ${key})
  endif()
endforeach()

# The text of a combination's precompiled header: one #include line per heavy header in `key`.
function(heavy_includes key out)
  string(REPLACE "_" ";" names "${key}")
  set(text "")
  foreach(name ${names})
    string(APPEND text "#include <${heavy_${name}_header}>\n")
  endforeach()
  set(${out} "${text}" PARENT_SCOPE)
endfunction()

# The files a make-style dependency list names (GCC's -M/-MD output), one per list entry.
function(read_dependencies depfile out)
  file(READ ${depfile} text)
  string(REGEX REPLACE "^[^:]*:" "" text "${text}")
  string(REPLACE "\\\n" " " text "${text}")
  string(REGEX REPLACE "[ \t\r\n]+" ";" text "${text}")
  list(REMOVE_ITEM text "")
  set(${out} ${text} PARENT_SCOPE)
endfunction()

# One memo line per file: its content hash when it is one of cct's headers (a fresh clone changes their
# times, not their contents), else its size and modification time.
function(describe_files out)
  set(lines)
  foreach(path ${ARGN})
    get_filename_component(path "${path}" ABSOLUTE)
    if(NOT EXISTS "${path}")
      set(lines "missing ${path}")
      break()
    endif()
    string(FIND "${path}" "${HEADER_ROOT}/" position)
    if(position EQUAL 0)
      file(SHA256 "${path}" hash)
      file(RELATIVE_PATH relative ${HEADER_ROOT} "${path}")
      list(APPEND lines "hash ${hash} ${relative}")  # relative: a clone elsewhere finds the record too
    else()
      file(SIZE "${path}" size)
      file(TIMESTAMP "${path}" time "%s" UTC)
      list(APPEND lines "stat ${size} ${time} ${path}")
    endif()
  endforeach()
  list(REMOVE_DUPLICATES lines)
  string(REPLACE ";" "\n" lines "${lines}")
  set(${out} "${lines}" PARENT_SCOPE)
endfunction()

# What a precompiled header is made of (its files as describe_files gives them), from the preprocessor
# alone (-M, a fraction of a second), so a run that finds every check in the memo compiles nothing.
function(precompiled_identity key out)
  heavy_includes(${key} text)
  set(probe ${WORK_DIR}/identity_${key}.hpp)
  file(WRITE ${probe} "${text}")
  execute_process(COMMAND ${CXX} ${flags} ${include_args} -x c++-header -M ${probe} -MF ${probe}.d
                  RESULT_VARIABLE result OUTPUT_QUIET ERROR_VARIABLE output)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "check_headers.cmake: could not list the files of ${key}:\n${output}")
  endif()
  read_dependencies(${probe}.d files)
  list(REMOVE_ITEM files ${probe})
  describe_files(description ${files})
  set(${out} "${description}" PARENT_SCOPE)
endfunction()

# A record's name: the compiler's version, the flags, the header's name and the contents of the cct
# headers it reaches through quoted includes, so that switching between two versions of the code finds
# the record of each (the record itself still lists, and checks, every file the compile read).
function(memo_path header out)
  set(closure)
  set(todo ${header})
  while(todo)
    list(POP_FRONT todo file)
    if(NOT file IN_LIST closure)
      list(APPEND closure ${file})
      list(APPEND todo ${deps_${file}})
    endif()
  endwhile()
  list(SORT closure)
  set(contents "")
  foreach(file ${closure})
    if(EXISTS ${HEADER_ROOT}/${file})
      file(SHA256 ${HEADER_ROOT}/${file} hash)
      string(APPEND contents "${file} ${hash}\n")
    endif()
  endforeach()
  string(REPLACE "${HEADER_ROOT}" "<cct>" where "${include_args}")  # the same key in a clone elsewhere
  string(SHA256 key "${compiler_version}|${flags}|${where}|${key_${header}}|${header}|${contents}")
  set(${out} ${MEMO_DIR}/${key}.txt PARENT_SCOPE)
endfunction()

# Whether the memo holds a passed check of `header` whose every file is unchanged.
function(memo_holds header out)
  set(${out} FALSE PARENT_SCOPE)
  if(NOT MEMO_DIR)
    return()
  endif()
  memo_path(${header} path)
  if(NOT EXISTS ${path})
    return()
  endif()
  file(READ ${path} recorded)
  set(key "${key_${header}}")
  if(NOT key STREQUAL "")
    string(FIND "${recorded}" "${identity_${key}}" position)
    if(position EQUAL -1)
      return()
    endif()
  endif()
  file(STRINGS ${path} lines REGEX "^(hash|stat|missing) ")
  foreach(line ${lines})
    if(line MATCHES "^hash [0-9a-f]+ (.*)$")
      set(file "${HEADER_ROOT}/${CMAKE_MATCH_1}")
    elseif(line MATCHES "^stat [0-9]+ [0-9]+ (.*)$")
      set(file "${CMAKE_MATCH_1}")
    else()
      return()
    endif()
    describe_files(now "${file}")
    if(NOT now STREQUAL line)
      return()
    endif()
  endforeach()
  set(${out} TRUE PARENT_SCOPE)
endfunction()

# Records a passed check: the files its compile read (from `depfile`) and its precompiled header's.
function(memo_record header depfile source)
  if(NOT MEMO_DIR)
    return()
  endif()
  read_dependencies(${depfile} files)
  list(REMOVE_ITEM files ${source})
  describe_files(description ${files})
  set(key "${key_${header}}")
  if(NOT key STREQUAL "")
    string(PREPEND description "${identity_${key}}\n")
  endif()
  memo_path(${header} path)
  string(RANDOM LENGTH 12 suffix)
  file(WRITE ${path}.${suffix}.tmp "${description}\n")
  file(RENAME ${path}.${suffix}.tmp ${path})  # whole records only, even with shards writing side by side
endfunction()

# Builds directory/<key>.hpp.gch, and its dependency list for the build system (-MD), under temporary
# names first, so an interrupted build never leaves a half-written precompiled header behind.
function(precompile key directory)
  set(pch ${directory}/${key}.hpp)
  heavy_includes(${key} text)
  file(WRITE ${pch} "${text}")
  execute_process(COMMAND ${CXX} ${flags} ${include_args} -x c++-header ${pch} -o ${pch}.gch.tmp
                          -MD -MF ${pch}.gch.d.tmp -MT ${pch}.gch
                  RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)
  if(NOT result EQUAL 0)
    file(REMOVE ${pch}.gch.tmp ${pch}.gch.d.tmp)
    message(FATAL_ERROR "check_headers.cmake: could not precompile ${key}:\n${output}")
  endif()
  file(RENAME ${pch}.gch.tmp ${pch}.gch)
  file(RENAME ${pch}.gch.d.tmp ${pch}.gch.d)
endfunction()

if(DEFINED PRECOMPILE_KEY)
  if(NOT PRECOMPILE_KEY MATCHES "^(eigen|immintrin|eigen_immintrin)$")
    message(FATAL_ERROR "check_headers.cmake: -DPRECOMPILE_KEY must be eigen, immintrin or eigen_immintrin, not '${PRECOMPILE_KEY}'")
  endif()
  file(MAKE_DIRECTORY ${PCH_DIR})
  precompile(${PRECOMPILE_KEY} ${PCH_DIR})
  return()
endif()

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
if(MEMO_DIR)
  foreach(key ${combinations})
    precompiled_identity(${key} identity_${key})
  endforeach()
endif()

if(NOT DEFINED PCH_DIR)
  set(PCH_DIR ${WORK_DIR})
endif()

set(failed)
set(checked 0)
set(remembered 0)
set(index 0)
foreach(header ${headers})
  math(EXPR mine "${index} % ${SHARDS}")
  math(EXPR index "${index} + 1")
  if(NOT mine EQUAL SHARD)
    continue()
  endif()
  if(DEFINED SKIP AND header IN_LIST SKIP)
    message("skipped ${header} (its dependency was not found at configure time)")
    continue()
  endif()
  string(MAKE_C_IDENTIFIER "${header}" stem)
  set(source ${WORK_DIR}/${stem}.cpp)
  file(WRITE ${source} "#include <${header}>\n")
  set(extra)
  set(how "alone")
  set(key "${key_${header}}")
  if(NOT key STREQUAL "")
    string(REPLACE "_" ", " names "${key}")
    set(how "alone, ${names} precompiled")
  endif()
  memo_holds(${header} held)
  if(held)
    math(EXPR checked "${checked} + 1")
    math(EXPR remembered "${remembered} + 1")
    message("ok      ${header} (${how}; passed before with the same files, memo)")
    continue()
  endif()
  if(NOT key STREQUAL "")
    set(pch_dir ${PCH_DIR})
    if(NOT EXISTS ${pch_dir}/${key}.hpp.gch)
      # Not built (a partial build, or a run without PCH_DIR): this shard precompiles its own copy.
      set(pch_dir ${WORK_DIR})
      if(NOT EXISTS ${pch_dir}/${key}.hpp.gch)
        message("precompiling ${key} into ${pch_dir}: ${PCH_DIR}/${key}.hpp.gch is not built "
                "(cmake --build <build> --target cct_header_precompiled builds it once for every shard)")
        precompile(${key} ${pch_dir})
      endif()
    endif()
    # Eigen's own pragmas that silence -Wignored-attributes do not survive precompilation.
    set(extra -include ${pch_dir}/${key}.hpp -Winvalid-pch -Wno-ignored-attributes)
  endif()
  execute_process(COMMAND ${CXX} ${flags} ${include_args} ${extra} -fsyntax-only -MD -MF ${source}.d ${source}
                  RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)
  math(EXPR checked "${checked} + 1")
  if(result EQUAL 0)
    memo_record(${header} ${source}.d ${source})
    message("ok      ${header} (${how})")
  else()
    message("FAILED  ${header} (${how})\n${output}")
    list(APPEND failed ${header})
  endif()
endforeach()

list(LENGTH failed failed_count)
if(failed_count GREATER 0)
  list(JOIN failed "\n  " failed_list)
  message(FATAL_ERROR "${failed_count} of ${checked} headers do not compile on their own "
                      "(each must include what it uses):\n  ${failed_list}")
endif()
message("all ${checked} public headers of this shard (${SHARD} of ${SHARDS}; ${header_count} in all) compile on their own "
        "(${remembered} of them unchanged since they passed, from the memo)")
