// Who may hold a connection, and how much request body may be in memory at once.
//
// ConnectionAdmission: a connection is anonymous until its TLS handshake yields a verified
// client certificate. Anonymous connections may hold at most `max_anonymous` slots in all and
// `max_anonymous_per_address` from one address; when a new connection finds either share full,
// the oldest idle anonymous connection (of that address, or of the address holding the most)
// is closed to make room, so
// that idle sockets can never lock legitimate clients out. When all `max_connections` are taken,
// the same eviction applies; only when every slot is authenticated or busy is a new connection
// refused. Connections that never sent a byte go first, so a flood of silent sockets cannot
// close a handshake in progress. Authenticated clients so keep their share. Thread-safe.
//
// BodyBudget: the bytes of request bodies all listeners together may be reading at once. A
// request reserves its body (its Content-Length, or its whole limit when chunked) after the
// header and before any byte of it is read; a request that does not fit is answered 503.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace sluice::net {

struct AdmissionLimits {
  std::size_t max_connections = 1024;
  std::size_t max_anonymous = 256;
  std::size_t max_anonymous_per_address = 32;
};

class ConnectionAdmission {
 public:
  explicit ConnectionAdmission(AdmissionLimits limits) : limits_(limits) {}

  // `evict` closes the connection; it is called (under no lock of ours) at most once, from
  // the thread admitting another connection. Returns 0 when the connection is refused.
  std::uint64_t admit(const std::string& address, std::function<void()> evict);
  void spoke(std::uint64_t id);  // sent its first bytes: closed for room only after the silent
  void authenticated(std::uint64_t id);    // leaves the anonymous share
  void busy(std::uint64_t id, bool busy);  // a busy connection is never evicted
  void release(std::uint64_t id);

  std::size_t open() const;
  std::size_t anonymous() const;
  std::uint64_t evicted() const { return evicted_.load(); }

 private:
  struct Entry {
    std::uint64_t id;
    std::string address;
    bool anonymous = true;
    bool busy = false;
    bool spoke = false;
    std::function<void()> evict;
  };
  using List = std::list<Entry>;
  // The anonymous entry to close for room (of `address` when given): the oldest that never
  // sent a byte, else the oldest idle; end() when none. Under mutex_.
  List::iterator oldest_idle(const std::string* address);
  // The entry to close when the shares in all are full: the oldest_idle of the address that
  // holds the most anonymous connections (then the next). Under mutex_.
  List::iterator victim();
  std::function<void()> remove(List::iterator it);  // under mutex_; returns its evict

  AdmissionLimits limits_;
  mutable std::mutex mutex_;
  List entries_;                                                 // oldest first. Guarded by mutex_.
  std::unordered_map<std::uint64_t, List::iterator> by_id_;      // Guarded by mutex_.
  std::unordered_map<std::string, std::size_t> anonymous_from_;  // Guarded by mutex_.
  std::size_t anonymous_ = 0;                                    // Guarded by mutex_.
  std::uint64_t next_id_ = 1;                                    // Guarded by mutex_.
  std::atomic<std::uint64_t> evicted_{0};
};

class BodyBudget {
 public:
  explicit BodyBudget(std::size_t max_bytes) : max_(max_bytes) {}
  // Reserves `bytes`; false (nothing reserved) when they do not fit.
  bool try_reserve(std::size_t bytes);
  void release(std::size_t bytes) { used_.fetch_sub(bytes); }
  std::size_t used() const { return used_.load(); }
  std::size_t max() const { return max_; }

  // Holds a reservation until destroyed.
  class Lease {
   public:
    Lease(BodyBudget* budget, std::size_t bytes) : budget_(budget), bytes_(bytes) {}
    ~Lease() {
      if (budget_ != nullptr) budget_->release(bytes_);
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;

   private:
    BodyBudget* budget_;
    std::size_t bytes_;
  };

 private:
  const std::size_t max_;
  std::atomic<std::size_t> used_{0};
};

}  // namespace sluice::net
