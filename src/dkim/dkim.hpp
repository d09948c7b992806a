// DKIM (RFC 6376) for mail mailward delivers: signing with libopendkim (relaxed/relaxed, rsa-sha256 or
// ed25519-sha256 per RFC 8463), verification against a key record given in memory (no DNS; for tests
// and the keygen self check), key generation with OpenSSL 3 EVP and the DNS TXT record (RFC 6376 3.6.1),
// and the Signer serve holds: the [[dkim]] keys, read from their files before the privilege drop.
// Messages are header + body as stored: CRLF lines. Nothing here throws.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "config/config.hpp"

namespace mailward::dkim {

enum class DkimErrc {
    ok = 0,
    bad_key = 1,    // the private key cannot be used (not PEM, wrong type, too small)
    bad_message,    // no header section, or a header line the library refuses
    bad_signature,  // verify(): a signature is there and does not verify
    no_signature,   // verify(): no DKIM-Signature header
    bad_name,       // a domain or selector that is not a DNS label sequence
    library_error,  // libopendkim or OpenSSL failed for another reason
    unsupported,    // ed25519-sha256 signing: see kEd25519Refusal
};
const boost::system::error_category& dkim_category() noexcept;
inline error_code make_error_code(DkimErrc e) noexcept { return {static_cast<int>(e), dkim_category()}; }

enum class Algorithm { rsa_sha256, ed25519_sha256 };
std::string_view to_string(Algorithm a);
std::optional<Algorithm> parse_algorithm(std::string_view s);  // "rsa-sha256", "ed25519-sha256"

// Why ed25519-sha256 is not signed with: Debian 12's libopendkim 2.11.0~beta2 signs and verifies it,
// but leaks memory on every ed25519 signature (LeakSanitizer: about 470 bytes per signed message from
// dkim_privkey_load and OpenSSL allocations it never frees), which a long-running serve cannot afford.
extern const std::string_view kEd25519Refusal;

// The headers signed when present (RFC 6376 5.4.1); From is also oversigned, so a second From
// added on the way breaks the signature.
extern const std::vector<std::string_view> kSignedHeaders;

struct SigningKey {
    std::string domain;    // d=, lower case
    std::string selector;  // s=
    Algorithm algorithm = Algorithm::rsa_sha256;
    std::string pem;  // private key, PEM (PKCS#8 or traditional)
    bool sign_relayed = true;
};

// Signs message and returns the header to prepend: "DKIM-Signature: ...\r\n", folded with CRLF.
Result<std::string> sign(std::string_view message, const SigningKey& key);

// Verifies the first DKIM-Signature of message with libopendkim, the key record ("v=DKIM1; k=...;
// p=...") for its s=/d= given here instead of looked up in DNS.
Result<void> verify(std::string_view message, std::string_view key_record);

// The domain of the first From: address, lower case; nullopt without one.
std::optional<std::string> from_domain(std::string_view message);
// True when a DKIM-Signature header of message has d= equal to domain (case-insensitive).
bool has_signature_by(std::string_view message, std::string_view domain);

// Key generation (OpenSSL 3 EVP). bits applies to RSA (1024..8192; RFC 8301 asks >= 1024, 2048 is
// the default); ed25519 keys have no size.
struct GeneratedKey {
    std::string pem;     // PKCS#8 private key
    std::string record;  // "v=DKIM1; k=rsa; p=BASE64"
};
Result<GeneratedKey> generate_key(Algorithm a, unsigned bits = 2048);
// The public key record of a private key in PEM; bad_key if it is not of algorithm a.
Result<std::string> public_record(std::string_view pem, Algorithm a);
// True when name is a domain or selector DKIM can use: dot-separated LDH labels (selectors may also
// hold '_' as RFC 6376 3.1 allows through sub-domain), each 1..63 octets, 253 in all.
bool valid_name(std::string_view name, bool selector);
// `SELECTOR._domainkey.DOMAIN. IN TXT "..." "..."`: record split into strings of at most 255 octets.
std::string txt_line(std::string_view selector, std::string_view domain, std::string_view record);

// What serve does with one message at delivery (docs/design.md "DKIM").
struct SignOutcome {
    enum class Kind { signed_now, no_key, relayed_not_signed, already_signed, failed } kind = Kind::no_key;
    std::string domain;  // the From: domain
    std::string detail;  // failure text, or "s=SELECTOR" when signed
};
std::string_view to_string(SignOutcome::Kind k);

// The [[dkim]] keys, loaded once by serve while it is still root.
class Signer {
  public:
    Signer() = default;
    explicit Signer(std::vector<SigningKey> keys) : keys_(std::move(keys)) {}

    // Reads every key_file: refuses a file group or others may read (and says which), one that is not
    // a private key of the entry's algorithm. why names the entry's domain and the file.
    static Result<Signer> load(const std::vector<config::DkimConfig>& entries, std::string& why);

    bool empty() const { return keys_.empty(); }
    const SigningKey* find(std::string_view domain) const;

    // Signs message in place (prepends the header) when a key matches its From: domain, it is not
    // signed by that domain already, and either own (mail mailward writes itself) or sign_relayed.
    // A failure leaves message unchanged: it is still delivered, unsigned.
    SignOutcome sign_outgoing(std::string& message, bool own) const;

  private:
    std::vector<SigningKey> keys_;
};

// Reads a PEM key file as Signer::load does; why says what is wrong.
Result<std::string> read_key_file(const std::filesystem::path& path, std::string& why);

}  // namespace mailward::dkim

namespace boost::system {
template <>
struct is_error_code_enum<mailward::dkim::DkimErrc> : std::true_type {};
}  // namespace boost::system
