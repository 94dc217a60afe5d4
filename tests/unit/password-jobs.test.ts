import bcrypt from 'bcryptjs';
import { PasswordJobs } from '../../src/auth/password-jobs';
import { BoundedAdmission } from '../../src/concurrency/bounded-admission';
import { AppError, ErrorCode } from '../../src/errors/app-error';

/*
 * The bounded queue in front of bcrypt's worker threads: who gets a slot, who waits, who is
 * refused. Holders here release only when the test says so, so nothing depends on timing.
 */

/** Settles the microtasks queued so far, so a pending acquire() could have resolved. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

function track(promise: Promise<boolean>): { result: boolean | 'pending' } {
  const state: { result: boolean | 'pending' } = { result: 'pending' };
  void promise.then((admitted) => (state.result = admitted));
  return state;
}

describe('BoundedAdmission', () => {
  it('admits up to its slots, lets one caller per spare place wait, and refuses the rest at once', async () => {
    const admission = new BoundedAdmission(2, 1, 60_000);
    expect(await admission.acquire()).toBe(true);
    expect(await admission.acquire()).toBe(true);
    const waiter = track(admission.acquire());
    expect(await admission.acquire()).toBe(false);
    await settle();
    expect(waiter.result).toBe('pending');
    expect({ holding: admission.holding, waiting: admission.waiting }).toEqual({ holding: 2, waiting: 1 });

    admission.release();
    await settle();
    expect(waiter.result).toBe(true);
    expect({ holding: admission.holding, waiting: admission.waiting }).toEqual({ holding: 2, waiting: 0 });
    admission.release();
    admission.release();
    expect(admission.holding).toBe(0);
  });

  it('refuses a waiter whose wait ran out while every slot stayed held', async () => {
    const admission = new BoundedAdmission(1, 5, 5);
    expect(await admission.acquire()).toBe(true);
    expect(await admission.acquire()).toBe(false);
    expect(admission.waiting).toBe(0);
    // The slot is still the holder's, and comes back to nobody but the pool.
    admission.release();
    expect(admission.holding).toBe(0);
  });

  it('with no wait, refuses as soon as the slots are full', async () => {
    const admission = new BoundedAdmission(1, 5, 0);
    expect(await admission.acquire()).toBe(true);
    expect(await admission.acquire()).toBe(false);
    expect(admission.waiting).toBe(0);
  });

  it('hands a released slot to the first waiter, not to a newcomer', async () => {
    const admission = new BoundedAdmission(1, 2, 60_000);
    expect(await admission.acquire()).toBe(true);
    const first = track(admission.acquire());
    admission.release();
    const newcomer = track(admission.acquire());
    await settle();
    expect(first.result).toBe(true);
    expect(newcomer.result).toBe('pending');
    admission.release();
    await settle();
    expect(newcomer.result).toBe(true);
  });

  it('follows a moving limit: nobody enters while holders exceed it, and a raised limit lets in every waiter that fits', async () => {
    let slots = 3;
    const admission = new BoundedAdmission(() => slots, 5, 60_000);
    for (let i = 0; i < 3; i += 1) expect(await admission.acquire()).toBe(true);
    slots = 1;
    const waiters = [track(admission.acquire()), track(admission.acquire())];
    admission.release();
    await settle();
    // Two still hold, over the new limit of one: the freed slot is not handed on.
    expect({ holding: admission.holding, waiting: admission.waiting }).toEqual({ holding: 2, waiting: 2 });
    expect(waiters.map((waiter) => waiter.result)).toEqual(['pending', 'pending']);
    slots = 4;
    admission.release();
    await settle();
    expect(waiters.map((waiter) => waiter.result)).toEqual([true, true]);
    expect({ holding: admission.holding, waiting: admission.waiting }).toEqual({ holding: 3, waiting: 0 });
  });
});

describe('PasswordJobs', () => {
  let jobs: PasswordJobs;

  afterEach(async () => {
    await jobs.close();
  });

  it('hashes and compares on its worker thread, never with this thread\'s bcrypt', async () => {
    const hereSpies = [jest.spyOn(bcrypt, 'hashSync'), jest.spyOn(bcrypt, 'compareSync'), jest.spyOn(bcrypt, 'hash'), jest.spyOn(bcrypt, 'compare')];
    let hash: string;
    try {
      jobs = new PasswordJobs({ threads: 1, queueMax: 4, queueWaitMs: 0 });
      hash = await jobs.hash('a-long-password', 4);
      expect(await jobs.compare('a-long-password', hash)).toBe(true);
      expect(await jobs.compare('another-password', hash)).toBe(false);
      expect(hereSpies.map((spy) => spy.mock.calls.length)).toEqual([0, 0, 0, 0]);
    } finally {
      jest.restoreAllMocks();
    }
    // And yet a real bcrypt hash came back: the worker thread's own bcryptjs made it.
    expect(bcrypt.compareSync('a-long-password', hash)).toBe(true);
    expect(jobs.stats()).toEqual({ threads: 1, running: 0, queued: 0, waiting: 0, completed: 3, failed: 0, refused: 0 });
  });

  it('refuses what does not fit in the queue with RATE_LIMITED and a retryAfter, and runs the rest', async () => {
    jobs = new PasswordJobs({ threads: 1, queueMax: 1, queueWaitMs: 0 });
    // Started in one go: one runs, one queues, nothing finishes before the last is asked for.
    const outcomes = await Promise.allSettled(Array.from({ length: 5 }, (_, index) => jobs.hash(`password-${index}`, 4)));
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'rejected', 'rejected']);
    for (const outcome of outcomes) {
      if (outcome.status === 'fulfilled') continue;
      const error = outcome.reason as unknown;
      expect(error).toBeInstanceOf(AppError);
      expect((error as AppError).code).toBe(ErrorCode.RATE_LIMITED);
      expect((error as AppError).extensions.retryAfter).toEqual(expect.any(Number));
      expect((error as AppError).extensions.retryAfter as number).toBeGreaterThanOrEqual(1);
    }
    expect(jobs.stats()).toMatchObject({ completed: 2, refused: 3, running: 0, queued: 0, waiting: 0 });
    // The queue drained: a new job gets in.
    expect(await jobs.hash('password-after', 4)).toMatch(/^\$2b\$04\$/);
  });

  it('lets a job wait for room instead of refusing it, when a wait is allowed', async () => {
    jobs = new PasswordJobs({ threads: 1, queueMax: 0, queueWaitMs: 60_000 });
    const outcomes = await Promise.allSettled([jobs.hash('password-a', 4), jobs.hash('password-b', 4), jobs.hash('password-c', 4)]);
    // One slot (the thread) and one place to wait: the third is refused, the waiter is served.
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    expect(jobs.stats()).toMatchObject({ completed: 2, refused: 1 });
  });

  it('ends its threads on close', async () => {
    jobs = new PasswordJobs({ threads: 2, queueMax: 0, queueWaitMs: 0 });
    expect(jobs.stats().threads).toBe(2);
    await jobs.close();
    expect(jobs.stats().threads).toBe(0);
  });
});
