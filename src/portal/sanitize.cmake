# mailward_portal_sanitize: the escrow portal's allow-list HTML sanitizer (sanitize.hpp) over the
# Gumbo HTML5 parser (Debian libgumbo-dev). Included by src/portal/CMakeLists.txt when present.
pkg_check_modules(GUMBO REQUIRED IMPORTED_TARGET gumbo)
add_library(mailward_portal_sanitize STATIC sanitize.cpp)
target_link_libraries(mailward_portal_sanitize PUBLIC mailward_common PRIVATE PkgConfig::GUMBO)
