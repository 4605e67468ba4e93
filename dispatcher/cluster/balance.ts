/**
 * CLU-08: how many communities each live dispatcher instance works for, and which ones it gives up or takes
 * to get there. Pure: every instance runs it on what it read from the lease and instance tables, and two
 * instances that read the same rows come to the same answer, so they never pull one community back and forth.
 *
 * The fair share: N communities over M live instances is ⌊N/M⌋ each, and the N mod M instances that hold
 * the most now (ties: by id) one more, so a balanced split is left as it is. An instance above its share
 * gives up the surplus (the communities it ranks lowest); one below it takes free communities (those it
 * ranks highest) up to its share. The rank of a community for an instance is a hash of both (rendezvous
 * hashing): stable, and different on every instance, so two instances short of work reach for different
 * free communities.
 */
import { createHash } from 'node:crypto';

export interface BalanceInput {
  /** This instance. */
  me: string;
  /** The live instances (this one included or not: it is counted either way). */
  members: readonly string[];
  /** The communities to spread. */
  names: readonly string[];
  /** Who holds each community now (a live lease); a name not in it is free. */
  holders: ReadonlyMap<string, string>;
}

export interface BalancePlan {
  /** This instance's share. */
  target: number;
  /** Held here beyond the share: to give up (the work stops first, then the lease goes). */
  release: string[];
  /** Free, to take while below the share. */
  take: string[];
}

/** The rank of a community for an instance (rendezvous hashing). */
export function score(name: string, member: string): number {
  return createHash('sha1').update(`${name}\n${member}`).digest().readUInt32BE(0);
}

export function balance(input: BalanceInput): BalancePlan {
  const { me, names, holders } = input;
  const members = [...new Set([...input.members, me])];
  const held = new Map<string, number>(members.map((m) => [m, 0]));
  for (const n of names) {
    const h = holders.get(n);
    if (h !== undefined && held.has(h)) held.set(h, held.get(h)! + 1);
  }
  const base = Math.floor(names.length / members.length);
  const extra = names.length % members.length;
  // The extra ones go to those who hold the most already: a split that is fair is not reshuffled.
  const ranked = [...members].sort((a, b) => held.get(b)! - held.get(a)! || (a < b ? -1 : a > b ? 1 : 0));
  const target = base + (ranked.indexOf(me) < extra ? 1 : 0);
  const mine = names.filter((n) => holders.get(n) === me);
  const byRank = (a: string, b: string) => score(b, me) - score(a, me) || (a < b ? -1 : 1);
  if (mine.length > target) return { target, release: [...mine].sort(byRank).slice(target), take: [] };
  const free = names.filter((n) => !holders.has(n));
  return { target, release: [], take: free.sort(byRank).slice(0, target - mine.length) };
}
