// Test driver for the outbound SMTP client against real peers (test_smtp_client.py): connects to
// ADDRESS:PORT at LEVEL, sends one message file, and prints one JSON object with the session
// error, the per-recipient results and the TLS facts. Input comes from the test (trusted); only
// loopback peers are used. Exit code 0 when the program ran, whatever the SMTP outcome.
//
// smtp_client_probe ADDRESS:PORT LEVEL --mx-host NAME [--ca FILE] [--tlsa "U S M HEX"]...
//                   --from ADDR --to ADDR [--to ADDR]... --message FILE [--helo NAME] [--timeout MS]
//                   [--auth-user NAME --auth-password-file FILE]
// --auth-user and --auth-password-file set the Target's credentials as serve does for a
// [[delivery.routes]] entry (the file's first line is the password).
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "outbound/smtp_client.hpp"

namespace asio = boost::asio;
using namespace mailward;
using json = nlohmann::json;

namespace {

[[noreturn]] void usage(const std::string& why) {
    std::cerr << "smtp_client_probe: " << why << "\n";
    std::exit(2);
}

json reply_json(const smtp::Reply& r) { return {{"code", r.code}, {"enhanced", r.enhanced}, {"text", r.summary()}}; }

json facts_json(const tls::PeerFacts& f) {
    json chain = json::array();
    for (const auto& c : f.chain) {
        chain.push_back({{"subject", c.subject},
                         {"issuer", c.issuer},
                         {"not_after", c.not_after},
                         {"key_type", c.key_type},
                         {"key_bits", c.key_bits}});
    }
    return {{"established", f.established},
            {"protocol", f.protocol},
            {"cipher", f.cipher},
            {"cipher_bits", f.cipher_bits},
            {"forward_secret", f.forward_secret},
            {"aead", f.aead},
            {"chain", chain},
            {"spki_sha256", f.spki_sha256},
            {"chain_valid", f.chain_valid},
            {"name_matched", f.name_matched},
            {"verify_error", f.verify_error},
            {"dane_checked", f.dane_checked},
            {"dane_matched", f.dane_matched}};
}

json error_json(const outbound::SessionError& e) {
    json j = {
        {"stage", std::string(outbound::to_string(e.stage))}, {"detail", e.detail}, {"ec", e.ec ? e.ec.message() : ""}};
    if (e.reply) j["reply"] = reply_json(*e.reply);
    if (e.refusal != outbound::Refusal::none) j["refusal"] = std::string(outbound::to_string(e.refusal));
    if (e.tls) j["tls"] = facts_json(*e.tls);
    return j;
}

std::vector<std::uint8_t> unhex(const std::string& h) {
    std::vector<std::uint8_t> out;
    for (std::size_t i = 0; i + 1 < h.size(); i += 2)
        out.push_back(static_cast<std::uint8_t>(std::stoi(h.substr(i, 2), nullptr, 16)));
    return out;
}

asio::awaitable<void> probe(outbound::Target target, tls::ClientContext ctx, outbound::ClientTimeouts to,
                            store::Envelope env, std::string body, json* out) {
    auto ex = co_await asio::this_coro::executor;
    auto [client, err] = co_await outbound::SmtpClient::connect(ex, target, ctx, to);
    (*out)["connected"] = client != nullptr;
    (*out)["error"] = err ? error_json(*err) : json(nullptr);
    if (!client) co_return;
    (*out)["starttls_offered"] = client->starttls_offered();
    (*out)["ehlo"] = client->ehlo_lines();
    (*out)["tls"] = facts_json(client->tls_facts());
    std::vector<std::size_t> idx;
    for (std::size_t i = 0; i < env.recipients.size(); ++i) idx.push_back(i);
    outbound::TransactionResult tr = co_await client->send(env, idx, body);
    (*out)["transaction_error"] = tr.error ? error_json(*tr.error) : json(nullptr);
    json rcpts = json::array();
    for (const auto& r : tr.recipients) {
        rcpts.push_back({{"index", r.index}, {"accepted", r.accepted}, {"reply", reply_json(r.reply)}});
    }
    (*out)["recipients"] = rcpts;
    co_await client->quit();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) usage("usage: smtp_client_probe ADDRESS:PORT LEVEL --mx-host NAME --from A --to B --message FILE");
    outbound::Target target;
    const std::string endpoint = argv[1];
    const auto colon = endpoint.rfind(':');
    if (colon == std::string::npos) usage("ADDRESS:PORT expected");
    target.address = endpoint.substr(0, colon);
    if (target.address.size() > 2 && target.address.front() == '[')
        target.address = target.address.substr(1, target.address.size() - 2);
    target.port = static_cast<unsigned short>(std::stoi(endpoint.substr(colon + 1)));
    auto level = tls::parse_level(argv[2]);
    if (!level) usage(std::string("unknown level ") + argv[2]);
    target.level = *level;
    target.helo_name = "probe.example.test";
    std::string ca, message_file;
    bool password_given = false;
    store::Envelope env;
    outbound::ClientTimeouts to;
    to.connect = to.greeting = to.command = to.data_init = to.data_block = to.data_done =
        std::chrono::milliseconds(20000);
    for (int i = 3; i < argc; ++i) {
        const std::string a = argv[i];
        if (i + 1 >= argc) usage(a + " needs a value");
        const std::string v = argv[++i];
        if (a == "--mx-host") {
            target.mx_host = v;
        } else if (a == "--ca") {
            ca = v;
        } else if (a == "--helo") {
            target.helo_name = v;
        } else if (a == "--from") {
            env.sender = v;
        } else if (a == "--to") {
            store::Recipient r;
            r.address = v;
            env.recipients.push_back(r);
        } else if (a == "--message") {
            message_file = v;
        } else if (a == "--timeout") {
            to.connect = to.greeting = to.command = to.data_init = to.data_block = to.data_done =
                std::chrono::milliseconds(std::stoi(v));
        } else if (a == "--auth-user") {
            target.auth_user = v;
        } else if (a == "--auth-password-file") {
            std::ifstream pf(v);
            if (!pf || !std::getline(pf, target.auth_password)) usage("cannot read " + v);
            password_given = true;
        } else if (a == "--tlsa") {
            std::istringstream in(v);
            int u = 0, s = 0, m = 0;
            std::string hex;
            if (!(in >> u >> s >> m >> hex)) usage("--tlsa \"USAGE SELECTOR MTYPE HEX\"");
            dns::TlsaRecord rec;
            rec.usage = static_cast<std::uint8_t>(u);
            rec.selector = static_cast<std::uint8_t>(s);
            rec.matching_type = static_cast<std::uint8_t>(m);
            rec.data = unhex(hex);
            target.tlsa.push_back(rec);
        } else {
            usage("unknown option " + a);
        }
    }
    if (target.mx_host.empty() || env.recipients.empty() || message_file.empty())
        usage("--mx-host, --to and --message are required");
    if (target.auth_user.empty() == password_given) usage("--auth-user and --auth-password-file go together");
    std::ifstream in(message_file, std::ios::binary);
    if (!in) usage("cannot read " + message_file);
    std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (unsigned char c : body) {
        if (c >= 0x80) {
            env.body_type = store::BodyType::eight_bit_mime;
            break;
        }
    }
    env.size = body.size();

    std::string error;
    auto ctx = tls::make_client_context(ca, error);
    if (!ctx) usage(error);
    asio::io_context io;
    json out;
    asio::co_spawn(io, probe(target, *ctx, to, env, body, &out), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
    });
    io.run();
    std::cout << out.dump(2) << std::endl;
    return 0;
}
