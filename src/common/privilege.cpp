// Dropping root: user lookup (getpwnam_r), handing data_dir to the user (lchown over the tree),
// and the one-way switch (initgroups/setgid/setuid, checked afterwards, then PR_SET_NO_NEW_PRIVS).
#include "common/privilege.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace mailward::common {
namespace {

error_code sys_error(int err) { return error_code(err, boost::system::system_category()); }

}  // namespace

Result<SystemUser> find_user(const std::string& name) {
    if (name.empty()) return Errc::invalid_argument;
    struct passwd pw {};
    struct passwd* found = nullptr;
    std::vector<char> buf(16384);
    const int rc = ::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found);
    if (rc != 0) return sys_error(rc);
    if (found == nullptr) return Errc::not_found;
    if (pw.pw_uid == 0) return Errc::invalid_argument;
    return SystemUser{name, pw.pw_uid, pw.pw_gid};
}

Result<void> forbid_new_privileges() {
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return sys_error(errno);
    return {};
}

Result<void> drop_privileges(const SystemUser& user) {
    if (user.uid == 0) return Errc::invalid_argument;
    if (::initgroups(user.name.c_str(), user.gid) != 0) return sys_error(errno);
    if (::setresgid(user.gid, user.gid, user.gid) != 0) return sys_error(errno);
    if (::setresuid(user.uid, user.uid, user.uid) != 0) return sys_error(errno);
    // Proof that the switch is for good: neither id can be taken back.
    if (::setuid(0) == 0 || ::setgid(0) == 0) return Errc::invalid_argument;
    uid_t ru = 0, eu = 0, su = 0;
    gid_t rg = 0, eg = 0, sg = 0;
    if (::getresuid(&ru, &eu, &su) != 0 || ::getresgid(&rg, &eg, &sg) != 0) return sys_error(errno);
    if (ru != user.uid || eu != user.uid || su != user.uid || rg != user.gid || eg != user.gid || sg != user.gid)
        return Errc::invalid_argument;
    if (auto r = forbid_new_privileges(); !r) return r;
    // setuid cleared the dumpable flag; keep it cleared so no same-uid process can ptrace us or
    // read our memory through /proc.
    (void)::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    return {};
}

Result<void> chown_tree(const std::filesystem::path& dir, const SystemUser& user,
                        const std::vector<std::filesystem::path>& keep) {
    namespace fs = std::filesystem;
    auto kept = [&](const fs::path& p) {
        std::error_code ec;
        for (const auto& k : keep)
            if (fs::equivalent(p, k, ec)) return true;
        return false;
    };
    if (::lchown(dir.c_str(), user.uid, user.gid) != 0) return sys_error(errno);
    std::error_code ec;
    fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec), end;
    if (ec) return sys_error(ec.value());
    for (; it != end; it.increment(ec)) {
        if (ec) return sys_error(ec.value());
        const fs::path& p = it->path();
        if (kept(p)) continue;
        if (::lchown(p.c_str(), user.uid, user.gid) != 0) return sys_error(errno);
    }
    if (ec) return sys_error(ec.value());
    return {};
}

CreateFilesAs::CreateFilesAs(const std::optional<SystemUser>& user) {
    if (!user || ::geteuid() != 0) return;
    if (::setegid(user->gid) != 0) return;
    if (::seteuid(user->uid) != 0) {
        (void)::setegid(0);
        return;
    }
    switched_ = true;
}

CreateFilesAs::~CreateFilesAs() {
    if (!switched_) return;
    // Back to root for what the caller does before its drop (binding ports below 1024). Failing
    // here leaves the process less privileged than it expects, never more: its drop then fails.
    (void)::seteuid(0);
    (void)::setegid(0);
}

}  // namespace mailward::common
