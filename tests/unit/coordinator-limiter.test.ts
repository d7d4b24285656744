// The store-write limiter of the coordinator's upload path: never more than its limit at once,
// queued work runs in arrival order, and a failing task frees its slot.
import { describe, expect, it } from 'vitest';
import { Limiter } from '../../coordinator/service.ts';

describe('Limiter', () => {
  it('runs at most `limit` tasks at once, the rest in arrival order, through failures', async () => {
    const limiter = new Limiter(3);
    let active = 0;
    let peak = 0;
    const order: number[] = [];
    const task = (i: number) => async () => {
      active++;
      peak = Math.max(peak, active);
      order.push(i);
      await new Promise((r) => setTimeout(r, 2 + (i % 4)));
      active--;
      if (i % 5 === 0) throw new Error(`task ${i} failed`);
      return i;
    };
    const results = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => limiter.run(task(i))));
    expect(peak).toBe(3);
    expect(order).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(8);
    expect(limiter.waiting).toBe(0);
    // Slots came back: a new task runs at once.
    expect(await limiter.run(async () => 'again')).toBe('again');
  });
});
