// The portal's connection limits, as plain logic (no sockets): which key a client address counts
// under (an IPv4 address; an IPv6 address by its /64, RFC 4291 section 2.5.4, since one host or
// home network gets a whole /64), and how many connections each key and all keys together may hold.
// Over the per-address limit a few connections are answered 429 (so a browser shows why); past
// that, and past the total, they are closed at once without any TLS work. Thread-safe.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace mailward::portal {

// "192.0.2.1" -> "192.0.2.1"; "::ffff:192.0.2.1" -> "192.0.2.1"; "2001:db8:1:2:3::4" ->
// "2001:db8:1:2::/64". nullopt for anything that is not an IP literal.
std::optional<std::string> address_key(std::string_view ip);

struct ConnectionRules {
    std::size_t total = 1000;              // connections served at once, every address together
    std::size_t per_address = 16;          // connections served at once per address_key
    std::size_t refusals_per_address = 2;  // 429 answers in progress per key; more are closed
    std::size_t refusals_total = 32;       // 429 answers in progress in all
};

enum class ConnectionVerdict {
    serve,   // counted; release() when it ends
    refuse,  // over the key's limit: answer 429 and close; counted as a refusal, release() it
    drop,    // close at once; nothing counted
};

class ConnectionLimiter {
  public:
    explicit ConnectionLimiter(ConnectionRules rules) : rules_(rules) {}
    ConnectionVerdict admit(const std::string& key);
    // Ends what admit() counted (serve or refuse; drop counted nothing).
    void release(const std::string& key, ConnectionVerdict verdict);
    std::size_t served() const;
    std::size_t served(const std::string& key) const;

  private:
    struct Counts {
        std::size_t served = 0;
        std::size_t refusing = 0;
    };
    ConnectionRules rules_;
    mutable std::mutex mutex_;
    std::map<std::string, Counts, std::less<>> by_key_;  // only keys with something open
    std::size_t served_ = 0;
    std::size_t refusing_ = 0;
};

}  // namespace mailward::portal
