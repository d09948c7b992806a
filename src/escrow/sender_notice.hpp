// The short notice that tells a sender one of their messages went to escrow instead of the
// recipient's mail server: why (the TLS reason the delivery engine recorded), for which recipient,
// until when the recipient can read it, and the ids to quote to an administrator. It names the
// original by its Message-ID (and In-Reply-To, so mail programs show it beside the original), not
// by its Subject: like the recipient's notice it says nothing of the content, so it may travel
// where the original could not (a REQUIRETLS original's subject stays protected). Composed with src/message;
// the escrow service queues it from the null sender (no bounce loops) when the sender's mode is
// listed in [escrow] notify_sender.
#pragma once

#include <chrono>
#include <string>

#include "common/result.hpp"

namespace mailward::escrow {

struct SenderNoticeInput {
    std::string to;          // the envelope sender
    std::string recipient;   // the escrowed recipient
    std::string message_id;  // the original Message-ID without <>, "" if none
    std::string reason;      // why it was escrowed (the recipient's last delivery reason)
    std::string queue_id;
    std::string escrow_id;
    std::chrono::system_clock::time_point expires{};
    std::string hostname;  // From: Mail Delivery System <MAILER-DAEMON@hostname>
};
Result<std::string> compose_sender_notice(const SenderNoticeInput& in);

// Read and expiry receipts, for senders whose account asks for them (`mailward user add|set
// --receipts`): the recipient opened the message in the portal, or it expired (read or not).
// Like the notice they name the original by Message-ID, never by subject.
struct ReceiptInput {
    enum class Kind { read, expired } kind = Kind::read;
    std::string to;          // the envelope sender
    std::string recipient;   // the escrowed recipient
    std::string message_id;  // the original Message-ID without <>, "" if none
    std::string escrow_id;
    std::chrono::system_clock::time_point at{};  // when it was read / expired
    bool was_read = false;                       // expired: whether it had been opened before
    std::string hostname;
};
Result<std::string> compose_receipt(const ReceiptInput& in);

}  // namespace mailward::escrow
