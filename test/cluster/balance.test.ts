/**
 * CLU-08: the fair share of each dispatcher instance, worked out by each of them from the same rows. Run to
 * a fixed point (every instance acting on the state the others left), the split is even whatever the start,
 * an even split is left as it is, and nobody reaches for a community another holds.
 */
import { describe, expect, it } from 'vitest';
import { balance } from '../../dispatcher/cluster/balance.ts';

const C = ['c1', 'c2', 'c3', 'c4'];

/** Every instance in turn gives up its surplus and takes its share until nothing moves; the rounds it took. */
function settle(members: string[], names: string[], holders: Map<string, string>): number {
  for (let round = 1; round <= 20; round++) {
    let moved = false;
    for (const me of members) {
      const plan = balance({ me, members, names, holders });
      for (const n of plan.release) {
        expect(holders.get(n)).toBe(me);
        holders.delete(n);
        moved = true;
      }
      for (const n of plan.take) {
        expect(holders.has(n)).toBe(false);
        holders.set(n, me);
        moved = true;
      }
    }
    if (!moved) return round;
  }
  throw new Error('never settled');
}

const counts = (members: string[], holders: Map<string, string>) =>
  members.map((m) => [...holders.values()].filter((h) => h === m).length);

describe('the fair share of dispatcher instances (CLU-08)', () => {
  it('splits 4 communities 2 + 2 when a second instance joins the one that holds them all', () => {
    const holders = new Map(C.map((c) => [c, 'a']));
    expect(balance({ me: 'a', members: ['a', 'b'], names: C, holders })).toMatchObject({
      target: 2,
      take: [],
    });
    expect(balance({ me: 'a', members: ['a', 'b'], names: C, holders }).release).toHaveLength(2);
    // b waits for a's surplus: nothing is free yet.
    expect(balance({ me: 'b', members: ['a', 'b'], names: C, holders })).toEqual({
      target: 2,
      release: [],
      take: [],
    });
    settle(['a', 'b'], C, holders);
    expect(counts(['a', 'b'], holders)).toEqual([2, 2]);
  });

  it('gives a third instance its share, and leaves the extra one with whoever holds it', () => {
    const holders = new Map([
      ['c1', 'a'],
      ['c2', 'a'],
      ['c3', 'b'],
      ['c4', 'b'],
    ]);
    settle(['a', 'b', 'c'], C, holders);
    expect(counts(['a', 'b', 'c'], holders).sort()).toEqual([1, 1, 2]);
    expect(counts(['a', 'b', 'c'], holders)[2]).toBe(1);
    // An even split is kept: no community moves when nothing changed.
    const before = new Map(holders);
    expect(settle(['a', 'b', 'c'], C, holders)).toBe(1);
    expect(holders).toEqual(before);
  });

  it('takes every community of an instance that left, and shares them out from nothing', () => {
    const holders = new Map([
      ['c1', 'a'],
      ['c2', 'a'],
    ]);
    // b left: its communities are free, a is alone and takes them all.
    expect(balance({ me: 'a', members: ['a'], names: C, holders }).take.sort()).toEqual(['c3', 'c4']);
    const empty = new Map<string, string>();
    const names = Array.from({ length: 10 }, (_, i) => `k${i}`);
    settle(['x', 'y', 'z'], names, empty);
    expect(counts(['x', 'y', 'z'], empty).sort()).toEqual([3, 3, 4]);
  });

  it('counts itself live before its own row is read, and never takes a community held by another', () => {
    const holders = new Map([['c1', 'ghost']]);
    const plan = balance({ me: 'a', members: [], names: C, holders });
    expect(plan.target).toBe(4);
    expect(plan.take.sort()).toEqual(['c2', 'c3', 'c4']);
  });
});
