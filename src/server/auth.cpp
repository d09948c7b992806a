// SMTP AUTH for the submission server (RFC 4954) with the PLAIN (RFC 4616) and LOGIN mechanisms,
// only inside TLS. The Argon2id check runs on the blocking pool, never on an I/O thread; an unknown
// user costs the same work as a wrong password so timing does not reveal which names exist.
// Verifications queue per client network (auth_queue.hpp): one network's failed logins wait behind
// each other, not in front of everyone else's, and too many failures get 454 without any work.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "common/blocking.hpp"
#include "common/log_escape.hpp"
#include "common/password.hpp"
#include "server/counters.hpp"
#include "server/session.hpp"
#include "smtp/sasl.hpp"

namespace mailward::server {
namespace {

using asio::use_awaitable;

struct Verified {
    bool ok = false;
    bool throttled = false;  // the network reached max_auth_failures while this one waited
    store::User user;
};

// Runs f (returning Verified) through the server's AUTH queue for net and resumes the awaiting
// coroutine on its own executor. Not a coroutine (see common/blocking.hpp for why).
template <class F>
asio::awaitable<Verified> run_queued(AuthQueue& queue, const std::string& net, F f) {
    return common::await_callback<Verified>([&queue, &net, f = std::move(f)](auto done) mutable {
        queue.submit(net, [f = std::move(f), done = std::move(done)]() mutable { done(f()); });
    });
}

// A fixed Argon2id hash used when the user does not exist, so both paths cost one verification.
const std::string& dummy_hash() {
    static const std::string h = common::hash_password("mailward-no-such-user").value();
    return h;
}

}  // namespace

// Sends a 334 challenge and reads one client response; nullopt when the exchange must stop
// (cancelled with "*", connection lost or timed out; the reply is already queued).
asio::awaitable<std::optional<std::string>> Session::sasl_response(std::string prompt) {
    reply(334, "", prompt);
    std::string line;
    auto st = co_await read_line(line);
    if (st != ReadStatus::line) co_return std::nullopt;
    if (line == "*") {
        reply(501, "5.0.0", "Authentication cancelled");
        co_return std::nullopt;
    }
    co_return line;
}

asio::awaitable<bool> Session::on_auth(const smtp::Command& cmd) {
    if (!tls_) {
        reply(538, "5.7.11", "Encryption required for requested authentication mechanism: use STARTTLS first");
        co_return bad_command();
    }
    if (!helo_ || !esmtp_) {
        reply(503, "5.5.1", "Send EHLO first");
        co_return bad_command();
    }
    if (!auth_user_.empty()) {
        reply(503, "5.5.1", "Already authenticated");
        co_return bad_command();
    }
    if (in_mail_) {
        reply(503, "5.5.1", "AUTH is not allowed during a mail transaction");
        co_return bad_command();
    }
    if (srv_->auth.blocked(net_)) {
        count_rejection("auth_throttled");
        spdlog::warn("{}: AUTH refused: too many failed logins from {} (max_auth_failures)", ip_, net_);
        reply(454, "4.7.0", "Temporary authentication failure: too many failed logins from your network, try later");
        co_return bad_command();
    }
    std::string mech = cmd.argument;
    std::string initial;
    bool has_initial = false;
    if (auto sp = mech.find(' '); sp != std::string::npos) {
        initial = mech.substr(sp + 1);
        mech.resize(sp);
        has_initial = true;
    }
    for (auto& c : mech) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));

    auto decode = [this](const std::string& b64) -> std::optional<std::string> {
        if (b64 == "=") return std::string();
        auto d = smtp::base64_decode(b64);
        if (!d) reply(501, "5.5.2", "Cannot decode the response (not base64)");
        return d;
    };

    std::string authcid, password;
    if (mech == "PLAIN") {
        std::optional<std::string> resp = initial;
        if (!has_initial) resp = co_await sasl_response("");
        if (!resp) co_return bad_command();
        auto raw = decode(*resp);
        if (!raw) co_return bad_command();
        auto creds = smtp::decode_plain(*raw);
        if (!creds) {
            reply(501, "5.5.2", "Malformed PLAIN response (expected authzid NUL authcid NUL password)");
            co_return bad_command();
        }
        authcid = creds->authcid;
        password = creds->password;
    } else if (mech == "LOGIN") {
        std::optional<std::string> user_b64 = initial;
        if (!has_initial) user_b64 = co_await sasl_response("VXNlcm5hbWU6");
        if (!user_b64) co_return bad_command();
        auto user = decode(*user_b64);
        if (!user) co_return bad_command();
        auto pass_b64 = co_await sasl_response("UGFzc3dvcmQ6");
        if (!pass_b64) co_return bad_command();
        auto pass = decode(*pass_b64);
        if (!pass) co_return bad_command();
        authcid = *user;
        password = *pass;
    } else {
        reply(504, "5.5.4", "Unrecognized authentication mechanism (PLAIN and LOGIN are offered)");
        co_return bad_command();
    }

    auto& users = srv_->store.users();
    auto& queue = srv_->auth;
    const std::string& net = net_;
    // A named lambda holding only references to this frame's locals: g++ 12 mis-destroys
    // temporaries with non-trivial captures inside co_await expressions.
    auto check = [&users, &queue, &net, &authcid, &password]() {
        Verified v;
        if (queue.blocked(net)) {
            v.throttled = true;
            return v;
        }
        auto u = users.get(authcid);
        if (!u) {
            common::verify_password(dummy_hash(), password);
            return v;
        }
        v.ok = common::verify_password(u->password_hash, password);
        v.user = std::move(*u);
        return v;
    };
    auto verified = co_await run_queued(queue, net, check);
    if (verified.throttled) {
        count_rejection("auth_throttled");
        spdlog::warn("{}: AUTH refused: too many failed logins from {} (max_auth_failures)", ip_, net_);
        reply(454, "4.7.0", "Temporary authentication failure: too many failed logins from your network, try later");
        co_return bad_command();
    }
    if (!verified.ok) {
        queue.record_failure(net_);
        count_rejection("auth_failed");
        spdlog::warn("{}: authentication failed for '{}'", ip_, common::log_escape(authcid));
        reply(535, "5.7.8", "Authentication credentials invalid");
        co_return bad_command();
    }
    auth_user_ = verified.user.name;
    auth_mode_ = verified.user.mode;
    auth_senders_ = verified.user.senders;
    privileged_ = true;
    spdlog::info("{}: authenticated as '{}'", ip_, common::log_escape(auth_user_));
    reply(235, "2.7.0", "Authentication successful");
    co_return true;
}

}  // namespace mailward::server
