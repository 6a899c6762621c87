# Project-wide warning flags. CI builds with CACHECAR_WERROR=ON.
function(cachecar_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
                         -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
                         -Woverloaded-virtual -Wnull-dereference -Wimplicit-fallthrough)
  if(CACHECAR_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
