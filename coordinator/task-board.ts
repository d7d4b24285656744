// Wakes a site's pending long-poll as soon as a task for it is created, instead of making the
// site wait out its poll interval.
export class TaskBoard {
  private readonly waiters = new Map<string, Set<() => void>>();

  notify(siteId: string): void {
    const set = this.waiters.get(siteId);
    if (!set) return;
    this.waiters.delete(siteId);
    for (const wake of set) wake();
  }

  notifyAll(): void {
    for (const site of [...this.waiters.keys()]) this.notify(site);
  }

  /** Resolves when notified, after waitMs, or when the signal aborts. */
  wait(siteId: string, waitMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiters.get(siteId);
      if (!set) {
        set = new Set();
        this.waiters.set(siteId, set);
      }
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.waiters.get(siteId)?.delete(done);
        resolve();
      };
      const timer = setTimeout(done, waitMs);
      signal?.addEventListener('abort', done, { once: true });
      set.add(done);
    });
  }
}
