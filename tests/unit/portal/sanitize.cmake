# portal_sanitize_test: the HTML sanitizer against XSS vectors, hostile structure and limits, as
# tables; every output is re-parsed with Gumbo and checked against an independent allow-list.
pkg_check_modules(GUMBO REQUIRED IMPORTED_TARGET gumbo)
mailward_unit_test(portal_sanitize_test SOURCES sanitize_test.cpp LIBS mailward_portal_sanitize PkgConfig::GUMBO)
