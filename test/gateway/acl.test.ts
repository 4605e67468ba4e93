/**
 * The topic ACL (DEV-03) as a pure function: allowed and forbidden topics per identity.
 */
import { describe, expect, it } from 'vitest';
import { type AclIdentity, mayPublish, maySubscribe, mayWill } from '../../gateway/acl.ts';
import { topics } from '../../gateway/protocol.ts';

const device: AclIdentity = { kind: 'device', device: { id: 'dev-1', homeId: 'home-1' } };
const staff: AclIdentity = { kind: 'staff', staffId: 'w1' };

/** The verdict on a publish, in a line: `events`, `status`, or what was refused. */
const publish = (who: AclIdentity | undefined, topic: string, retain = false): string => {
  const d = mayPublish(who, topic, retain);
  return d.ok ? d.channel : `refused ${d.refused}`;
};

describe('publish', () => {
  it('lets a device publish its own events and status, and retain its status only', () => {
    expect(publish(device, topics.events('home-1', 'dev-1'))).toBe('events');
    expect(publish(device, topics.status('home-1', 'dev-1'))).toBe('status');
    expect(publish(device, topics.status('home-1', 'dev-1'), true)).toBe('status');
    expect(publish(device, topics.events('home-1', 'dev-1'), true)).toBe('refused retain');
  });

  it("refuses a device another device's topics, another home's, and its own errors topic", () => {
    for (const topic of [
      topics.events('home-1', 'dev-2'),
      topics.status('home-1', 'dev-2'),
      topics.events('home-2', 'dev-1'),
      topics.errors('home-1', 'dev-1'),
      topics.staffAlerts('w1'),
      'g365/v1/homes/home-1/devices/dev-1/other',
      'g365/v1/homes/home-1/devices/dev-1/events/more',
      'g365/v2/homes/home-1/devices/dev-1/events',
      '$SYS/broker/clients',
      '',
    ])
      expect(publish(device, topic), topic).toBe('refused publish');
  });

  it('refuses every publish of a staff app and of a client that is not logged in', () => {
    expect(publish(staff, topics.staffAlerts('w1'))).toBe('refused publish');
    expect(publish(staff, topics.events('home-1', 'dev-1'))).toBe('refused publish');
    expect(publish(undefined, topics.events('home-1', 'dev-1'))).toBe('refused publish');
  });
});

describe('subscribe', () => {
  it('lets a device subscribe to its own errors topic and nothing else, wildcards included', () => {
    expect(maySubscribe(device, topics.errors('home-1', 'dev-1'))).toBe(true);
    for (const topic of [
      topics.errors('home-1', 'dev-2'),
      topics.errors('home-2', 'dev-1'),
      topics.events('home-1', 'dev-1'),
      topics.status('home-1', 'dev-1'),
      'g365/v1/homes/home-1/devices/dev-1/+',
      'g365/v1/homes/home-1/devices/+/errors',
      'g365/v1/#',
      '#',
    ])
      expect(maySubscribe(device, topic), topic).toBe(false);
  });

  it('lets a staff app subscribe to its own alerts topic and nothing else', () => {
    expect(maySubscribe(staff, topics.staffAlerts('w1'))).toBe(true);
    for (const topic of [
      topics.staffAlerts('w2'),
      'g365/v1/staff/+/alerts',
      'g365/v1/staff/#',
      topics.events('home-1', 'dev-1'),
      topics.errors('home-1', 'dev-1'),
      '#',
    ])
      expect(maySubscribe(staff, topic), topic).toBe(false);
  });

  it('refuses every subscription of a client that is not logged in', () => {
    expect(maySubscribe(undefined, topics.errors('home-1', 'dev-1'))).toBe(false);
  });
});

describe('will', () => {
  it("lets a device's will be its own status topic only", () => {
    expect(mayWill(device, topics.status('home-1', 'dev-1'))).toBe(true);
    expect(mayWill(device, topics.status('home-1', 'dev-2'))).toBe(false);
    expect(mayWill(device, topics.events('home-1', 'dev-1'))).toBe(false);
    expect(mayWill(device, topics.status('home-2', 'dev-1'))).toBe(false);
  });

  it('lets no staff app set a will', () => {
    expect(mayWill(staff, topics.staffAlerts('w1'))).toBe(false);
  });
});
