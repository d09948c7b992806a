// RFC 8689 section 5, "TLS-Required: No": whether a message carries the header field and whether
// its sender was given the right to use it. The header lets a sender ask for delivery without TLS;
// mailward honours it only for accounts an administrator allowed (`user set NAME
// --allow-tls-optional`) and, when [policy] tls_optional_trusted_networks says so, for
// unauthenticated trusted-network clients. decide() applies it (never below an admin override or a
// static [policy.domains] floor); the engine, `policy simulate` and `queue show` all ask here.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mailward::policy {

// The message header (up to the first empty line) has a "TLS-Required" field whose value is "No"
// (case-insensitive, folded values unfolded). Reads at most the header.
bool has_tls_required_no(std::string_view message);

// Whether the sender of a message may lower its TLS requirement with the header.
struct TlsOptionalRight {
    bool allowed = false;
    std::string why;  // who the sender is and where the right comes from (or why it is missing)
};

// auth_user: the SMTP AUTH login of the submission, "" for an unauthenticated trusted-network
// client. account_allows: that account's --allow-tls-optional flag; nullopt when the account no
// longer exists. trusted_networks_allowed: [policy] tls_optional_trusted_networks.
TlsOptionalRight tls_optional_right(std::string_view auth_user, std::optional<bool> account_allows,
                                    bool trusted_networks_allowed);

// What the header does to a message: honoured (lowers it, never below the admin's floor), or
// ignored and why. REQUIRETLS wins over the header (RFC 8689 section 5); then the sender's right.
struct TlsRequiredNoEffect {
    bool honoured = false;
    std::string why;
};
TlsRequiredNoEffect tls_required_no_effect(bool requiretls, const TlsOptionalRight& right);

}  // namespace mailward::policy
