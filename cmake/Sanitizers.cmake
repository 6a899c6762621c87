# ASan + UBSan for the whole build (C and C++, our code and llhttp alike).
if(CACHECAR_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=all)
  add_link_options(-fsanitize=address,undefined)
endif()
