/**
 * Keys with an expiry (epoch ms), at most `cap` of them: when full, the expired go first, then the
 * oldest inserted. An evicted key is merely forgotten here; the caller keeps a durable copy.
 */
export class ExpiringKeys {
  private readonly keys = new Map<string, number>();
  /** The latest expiry of a key dropped while live (0: none). */
  evictedUntil = 0;

  constructor(private readonly cap: number) {}

  get size(): number {
    return this.keys.size;
  }

  /** The key's expiry while it is live, else undefined. */
  live(key: string, now: number): number | undefined {
    const at = this.keys.get(key);
    return at !== undefined && at > now ? at : undefined;
  }

  set(key: string, expiresAt: number, now: number): void {
    if (this.keys.size >= this.cap && !this.keys.has(key)) this.makeRoom(now);
    this.keys.set(key, expiresAt);
  }

  /** Drops the expired keys. */
  prune(now: number): void {
    for (const [key, at] of this.keys) if (at <= now) this.keys.delete(key);
  }

  private makeRoom(now: number): void {
    this.prune(now);
    // Then down to 90 % of the cap, oldest first, so a full map does not scan on every insert.
    let drop = this.keys.size - Math.floor(this.cap * 0.9);
    for (const key of this.keys.keys()) {
      if (drop-- <= 0) break;
      this.evictedUntil = Math.max(this.evictedUntil, this.keys.get(key)!);
      this.keys.delete(key);
    }
  }
}
