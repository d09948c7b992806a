// multipart/form-data (RFC 7578), the portal's reply form with file uploads, parsed with GMime's MIME
// parser. Input is hostile: a missing boundary, a part without a name or too many parts is an error.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace mailward::message {

struct FormPart {
    std::string name;
    std::string filename;      // "" for a plain field
    std::string content_type;  // as sent, lower case, no parameters ("" if none)
    std::string data;          // the bytes as sent
};

// content_type_header: the request's Content-Type ("multipart/form-data; boundary=..."). Errors:
// common::Errc::invalid_argument (not form data, no boundary, a part without name), too_large (more
// than max_parts parts).
Result<std::vector<FormPart>> parse_form_data(std::string_view content_type_header, std::string_view body,
                                              std::size_t max_parts = 50);

}  // namespace mailward::message
