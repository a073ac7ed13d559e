// A fixed set of threads for CPU work (parsing, validation, signing, backups, audit checks)
// so that network threads only move bytes. The queue is bounded: try_post() refuses a job
// when `max_queued` are already waiting, and the caller answers "busy" instead of letting
// work pile up without limit. Jobs must not throw (an escaping exception is logged and
// swallowed so one bad job cannot take a worker down).
// Thread-safe: every method may be called from any thread.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sluice {

class WorkerPool {
 public:
  using Job = std::move_only_function<void()>;

  WorkerPool(std::string name, std::size_t threads, std::size_t max_queued);
  ~WorkerPool();  // stop()
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `job`; false (and `job` dropped) when the queue is full or the pool stopped.
  bool try_post(Job job);
  // Runs what is queued, then joins the threads. Later try_post() calls return false.
  void stop();

  std::size_t queued() const;
  std::size_t max_queued() const { return max_queued_; }

 private:
  void run();

  const std::string name_;
  const std::size_t max_queued_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;   // Guarded by mutex_.
  bool stopping_ = false;  // Guarded by mutex_.
  std::vector<std::thread> threads_;
};

}  // namespace sluice
