/** A binary max-heap of items under numeric keys. */
export class MaxHeap<T> {
  private readonly keys: number[] = [];
  private readonly items: T[] = [];
  get size(): number {
    return this.keys.length;
  }
  peekKey(): number {
    return this.keys[0];
  }
  push(key: number, item: T): void {
    let i = this.keys.length;
    this.keys.push(key);
    this.items.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.keys[parent] >= key) break;
      this.swap(i, parent);
      i = parent;
    }
  }
  pop(): { key: number; item: T } | undefined {
    if (this.keys.length === 0) return undefined;
    const top = { key: this.keys[0], item: this.items[0] };
    const lastKey = this.keys.pop()!;
    const lastItem = this.items.pop()!;
    if (this.keys.length > 0) {
      this.keys[0] = lastKey;
      this.items[0] = lastItem;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.keys.length && this.keys[l] > this.keys[m]) m = l;
        if (r < this.keys.length && this.keys[r] > this.keys[m]) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }
  private swap(a: number, b: number): void {
    [this.keys[a], this.keys[b]] = [this.keys[b], this.keys[a]];
    [this.items[a], this.items[b]] = [this.items[b], this.items[a]];
  }
}
