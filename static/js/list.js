// The page's one live list: rows arrive in bursts and are painted once a frame, newest first; at most `cap` rows
// stay in view and the ones let go are counted; an empty list says so. The feed, the tap and trace feeds, the RPC
// timeline and the RPC inspector all draw their rows through it.

/** `fn`, run once in the next animation frame however often the returned function is called before it. */
export function everyFrame(fn) {
  let scheduled = false;
  return () => {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => {
      scheduled = false;
      fn();
    });
  };
}

export class LiveList {
  /**
   * @param container the element the rows go in (<ol>, <ul>, <tbody>); with a `data-empty` attribute it gets the
   *   class `empty` while it has no row (the CSS shows that text)
   * @param render item -> row (a Node), or null to leave the item out; by default the item is the row
   * @param cap rows kept in view
   * @param empty an element shown while there is no row and none waiting (optional)
   * @param onRemove row -> void: a row left the view (over the cap)
   * @param onDrop item -> void: an item let go before it was painted (more than `cap` arrived in one frame)
   * @param onPaint () -> void: after every paint
   */
  constructor({ container, render = (item) => item, cap = 200, empty = null, onRemove = null, onDrop = null,
    onPaint = null }) {
    Object.assign(this, { container, render, cap, empty, onRemove, onDrop, onPaint });
    this.pending = []; // arrived since the last paint, oldest first
    this.dropped = 0; // rows let go: over the cap in view, or over the cap before they were painted
    this.paused = false;
    this.schedule = everyFrame(() => this.paint());
    this.updateEmpty();
  }

  /** Rows in view. */
  get rows() {
    return this.container.children.length;
  }

  /** Rows in view and waiting to be painted. */
  get size() {
    return this.rows + this.pending.length;
  }

  add(item) {
    this.pending.push(item);
    if (this.pending.length > this.cap) {
      const gone = this.pending.splice(0, this.pending.length - this.cap);
      this.dropped += gone.length;
      if (this.onDrop) for (const item of gone) this.onDrop(item);
    }
    if (!this.paused) this.schedule();
  }

  paint() {
    if (!this.paused && this.pending.length) {
      const batch = this.pending;
      this.pending = [];
      const fragment = document.createDocumentFragment();
      for (let i = batch.length - 1; i >= 0; i -= 1) {
        const row = this.render(batch[i]);
        if (row) fragment.append(row);
      }
      this.container.prepend(fragment);
      this.trim();
      this.updateEmpty();
    }
    this.onPaint?.();
  }

  /** Draw `items` (oldest first) instead of whatever is in view; what waited is forgotten. */
  replace(items) {
    this.pending = [];
    const rows = [];
    for (let i = items.length - 1; i >= 0 && rows.length < this.cap; i -= 1) {
      const row = this.render(items[i]);
      if (row) rows.push(row);
    }
    this.container.replaceChildren(...rows);
    this.updateEmpty();
    this.onPaint?.();
  }

  trim() {
    while (this.container.children.length > this.cap) {
      const last = this.container.lastElementChild;
      last.remove();
      this.dropped += 1;
      this.onRemove?.(last);
    }
  }

  setCap(cap) {
    this.cap = cap;
    this.trim();
    this.updateEmpty();
  }

  setPaused(paused) {
    this.paused = paused;
    if (!paused) this.schedule();
  }

  clear() {
    this.container.replaceChildren();
    this.pending = [];
    this.updateEmpty();
  }

  updateEmpty() {
    const rows = this.rows;
    if (this.container.dataset.empty !== undefined) this.container.classList.toggle("empty", rows === 0);
    if (this.empty) this.empty.hidden = rows > 0 || this.pending.length > 0;
  }
}
