import { AppError, ErrorCode } from '../errors/app-error';

/*
 * The queue between the bus and one subscription, by hand because what it must do is small and
 * exact: bounded (a client that stops reading is ended, not buffered without limit, as Node's
 * `events.on` would), and `return()` ends it at once, even while a `next()` waits (an async
 * generator would only see its `return()` after the next message arrived, keeping a finished
 * subscription listening until then).
 */
export class EventQueue<T> implements AsyncIterableIterator<T> {
  private readonly buffer: T[] = [];
  private waiting: { resolve: (result: IteratorResult<T>) => void; reject: (error: unknown) => void } | null = null;
  private ended = false;
  private failure: unknown = null;

  constructor(
    private readonly max: number,
    /** Called once, when the queue ends for any reason. */
    private readonly onEnd: () => void,
  ) {}

  push(item: T): void {
    if (this.ended) return;
    if (this.waiting) {
      const { resolve } = this.waiting;
      this.waiting = null;
      resolve({ done: false, value: item });
      return;
    }
    if (this.buffer.length >= this.max) {
      this.fail(
        new AppError(ErrorCode.SERVICE_UNAVAILABLE, `This subscription fell ${this.max} events behind and was ended; subscribe again`),
      );
      return;
    }
    this.buffer.push(item);
  }

  /** Ends the queue: what is buffered is dropped, a waiting `next()` gets done. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.buffer.length = 0;
    const waiting = this.waiting;
    this.waiting = null;
    waiting?.resolve({ done: true, value: undefined });
    this.onEnd();
  }

  /** Ends the queue with an error, which the next (or waiting) `next()` throws. */
  fail(error: unknown): void {
    if (this.ended) return;
    const waiting = this.waiting;
    this.waiting = null;
    if (!waiting) this.failure = error;
    this.end();
    waiting?.reject(error);
  }

  next(): Promise<IteratorResult<T>> {
    if (this.buffer.length > 0) return Promise.resolve({ done: false, value: this.buffer.shift() as T });
    if (this.failure !== null) {
      const failure = this.failure;
      this.failure = null;
      return Promise.reject(failure);
    }
    if (this.ended) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  return(): Promise<IteratorResult<T>> {
    this.end();
    return Promise.resolve({ done: true, value: undefined });
  }

  throw(error: unknown): Promise<IteratorResult<T>> {
    this.end();
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
