// A scripted SMTP server on 127.0.0.1 for the outbound client's tests: one thread, blocking
// sockets, optional STARTTLS (OpenSSL), replies taken from a Script, and a record of every byte
// and command it received so that tests can assert the exact wire behaviour. Test-only: trusts
// its client, handles one connection at a time.
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace mailward::testing {

struct Script {
    std::string greeting = "220 fake.example.test ESMTP";
    std::chrono::milliseconds greeting_delay{0};
    std::vector<std::string> ehlo{"PIPELINING", "8BITMIME", "DSN", "SIZE 1000000"};
    std::vector<std::string> ehlo_tls;  // after STARTTLS; empty: ehlo without STARTTLS
    std::string ehlo_reply;             // when set: the reply to EHLO (e.g. "502 5.5.1 no")
    std::string starttls_reply = "220 2.0.0 ready to start TLS";
    bool starttls_then_close = false;   // 220, then close instead of a handshake
    bool starttls_then_inject = false;  // 220 and a second reply in the same write
    bool silent_after_tls = false;      // handshake, then never answer
    std::string mail_reply = "250 2.1.0 sender ok";
    std::map<std::string, std::string> rcpt_replies;             // address (inside <>) -> reply; default 250
    std::string data_reply;                                      // "" : 354 when a RCPT was accepted, else 554
    std::vector<std::string> final_replies{"250 2.0.0 queued"};  // one per message, the last repeats
    bool silent_after_data = false;                              // never answer the final "."
    SSL_CTX* tls = nullptr;                                      // when set, STARTTLS is served with it (not owned)
};

struct Session {
    std::vector<std::string> reads;     // every read, as received (decrypted under TLS)
    std::vector<std::string> commands;  // command lines in order; "(tls) " prefix once under TLS
    std::vector<std::string> messages;  // raw DATA bytes up to and including the ".\r\n" line
    bool tls = false;
};

class FakeSmtpServer {
  public:
    explicit FakeSmtpServer(Script script, int connections = 1);
    ~FakeSmtpServer();
    FakeSmtpServer(const FakeSmtpServer&) = delete;
    FakeSmtpServer& operator=(const FakeSmtpServer&) = delete;

    unsigned short port() const { return port_; }
    // Waits for the server thread (it ends after `connections` sessions or 20 s) and returns them.
    std::vector<Session> sessions();

  private:
    void run();
    void serve(int fd);

    Script script_;
    int connections_;
    int listen_fd_ = -1;
    unsigned short port_ = 0;
    std::atomic<bool> stop_{false};
    std::mutex mu_;
    std::vector<Session> sessions_;
    std::thread thread_;
};

}  // namespace mailward::testing
