// The client side of the DATA phase (RFC 5321 4.1.1.4 end of data, 4.5.2 transparency): the octets
// sent after 354 never hold a bare CR or a bare LF, so no receiver can see an end of data that is
// not ours (SMTP smuggling, 2023: <LF>.<LF>, <CR>.<CR>, <CR><LF>.<LF>, ...). A one-pass scan proves
// a body clean (only CRLF line ends, no NUL); only a body that is not gets a normalised copy, where
// every bare CR, bare LF is a CRLF. A NUL is refused (receivers that drop it could join a line
// into an end marker). Also the check every composed message passes before it is queued. Pure.
#pragma once

#include <string>
#include <string_view>

namespace mailward::smtp {

struct BodyScan {
    bool crlf_only = true;   // every CR is followed by LF and every LF preceded by CR
    bool nul = false;        // a NUL octet (refused: see above)
    bool dot_line = false;   // a line starts with "." (needs stuffing)
    bool ends_crlf = false;  // the last two octets are CRLF
};

// One pass over body (8 octets at a time where nothing needs a look).
BodyScan scan_body(std::string_view body);

// Appends to out the DATA octets of body: bare CR and bare LF as CRLF, dot-stuffed, a final CRLF
// ensured, then the end marker ".\r\n". NUL octets are copied: check scan_body().nul first.
void encode_data(std::string_view body, std::string& out);

// For composers (notices, code mails, replies, DSNs): makes body's line ends CRLF only (bare CR,
// bare LF -> CRLF), without a copy when they already are. False (body unchanged) when it holds a NUL.
bool normalise_line_ends(std::string& body);

}  // namespace mailward::smtp
