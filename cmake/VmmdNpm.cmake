# npm packages the build vendors from a committed package-lock.json: `npm ci`
# into a directory of the build tree (never the source tree), with install
# scripts off, so nothing downloads a browser or a prebuilt binary.
find_program(NPM_EXECUTABLE npm)
if(NOT NPM_EXECUTABLE)
  message(FATAL_ERROR "npm not found: the dashboard and its browser test vendor npm packages. "
                      "scripts/setup.sh installs Node.js and npm.")
endif()

# vmmd_npm_ci(<target> <dir with package.json and package-lock.json> <work dir>)
# Makes <target> (part of ALL); <work dir>/node_modules holds the packages once it has run.
function(vmmd_npm_ci target source_dir work_dir)
  set(stamp ${work_dir}/node_modules/.package-lock.json)
  file(MAKE_DIRECTORY ${work_dir})
  add_custom_command(
    OUTPUT ${stamp}
    COMMAND ${CMAKE_COMMAND} -E copy ${source_dir}/package.json ${source_dir}/package-lock.json
            ${work_dir}
    COMMAND ${NPM_EXECUTABLE} ci --ignore-scripts --no-audit --no-fund --loglevel=error
    COMMAND ${CMAKE_COMMAND} -E touch ${stamp}
    WORKING_DIRECTORY ${work_dir}
    DEPENDS ${source_dir}/package.json ${source_dir}/package-lock.json
    COMMENT "npm ci (${target})"
    VERBATIM)
  add_custom_target(${target} ALL DEPENDS ${stamp})
endfunction()
