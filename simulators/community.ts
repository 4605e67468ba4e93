/**
 * The demo community 阳光社区: 3 grids, 30 households living alone with fall radar, door contact and motion
 * sensors, day and night responders and a duty roster. Used by `npm run demo`, the tests and the benchmarks.
 */

import type { Grid, Household, Room, RosterEntry, Staff } from '../dispatcher/api/types.ts';
import type { DeviceKind } from '../gateway/protocol.ts';
import { Rng } from './random.ts';

export interface CommunityPlan {
  grids: Grid[];
  households: Household[];
  devices: { id: string; homeId: string; kind: DeviceKind; room: Room }[];
  staff: {
    id: string;
    name: string;
    phone: string;
    roles: Staff['roles'];
    gridIds: string[];
    username: string;
    password: string;
  }[];
  roster: RosterEntry[];
}

const SURNAMES = [
  '王',
  '李',
  '张',
  '刘',
  '陈',
  '杨',
  '赵',
  '黄',
  '周',
  '吴',
  '徐',
  '孙',
  '胡',
  '朱',
  '高',
  '林',
  '何',
  '郭',
  '马',
  '罗',
];
const GIVEN = [
  '秀英',
  '桂英',
  '玉兰',
  '建国',
  '淑珍',
  '德明',
  '凤英',
  '国华',
  '志强',
  '秀兰',
  '文华',
  '金凤',
];
export const ROOMS = ['living', 'bedroom', 'bathroom', 'kitchen'] as const;

export interface PlanOptions {
  grids?: number;
  householdsPerGrid?: number;
  seed?: number;
  /** Password for every demo staff login. */
  staffPassword?: string;
  community?: string;
}

export function planCommunity(o: PlanOptions = {}): CommunityPlan {
  const rng = new Rng(o.seed ?? 365);
  const nGrids = o.grids ?? 3;
  const perGrid = o.householdsPerGrid ?? 10;
  const password = o.staffPassword ?? 'guardian365';
  const community = o.community ?? '阳光社区';
  const plan: CommunityPlan = { grids: [], households: [], devices: [], staff: [], roster: [] };
  const person = () => `${rng.pick(SURNAMES)}${rng.pick(GIVEN)}`;
  const phone = () => `13${rng.int(0, 9)}${String(rng.int(0, 99_999_999)).padStart(8, '0')}`;

  for (let g = 1; g <= nGrids; g++) {
    const gridId = `grid-${g}`;
    const staff = (suffix: string, roles: Staff['roles'][number][]) => {
      const id = `${gridId}-${suffix}`;
      plan.staff.push({
        id,
        name: person(),
        phone: phone(),
        roles,
        gridIds: [gridId],
        username: `g${g}-${suffix}`,
        password,
      });
      return id;
    };
    const worker = staff('worker', ['grid_worker']);
    const leader = staff('leader', ['building_leader']);
    const buddy = staff('buddy', ['volunteer']);
    const social = staff('social', ['social_worker']);
    const duty = staff('property', ['property_duty']);
    plan.grids.push({
      id: gridId,
      name: `第${'一二三四五六七八九十'[g - 1] ?? g}网格`,
      community,
      leaderId: worker,
    });
    plan.roster.push({ gridId, shift: 'day', weekdays: [], staffIds: [worker, leader, buddy] });
    plan.roster.push({ gridId, shift: 'night', weekdays: [], staffIds: [social, duty] });

    for (let h = 1; h <= perGrid; h++) {
      const homeId = `home-${g}-${String(h).padStart(2, '0')}`;
      plan.households.push({
        id: homeId,
        gridId,
        address: {
          building: `${g}${String(rng.int(1, 9))}号楼`,
          unit: `${rng.int(1, 3)}单元`,
          room: `${rng.int(1, 6)}0${rng.int(1, 4)}`,
        },
        residents: [
          {
            name: person(),
            age: rng.int(68, 95),
            phone: phone(),
            healthNotes: rng.pick(['高血压', '糖尿病', '行动不便', '']),
          },
        ],
        contacts: [{ name: person(), relation: rng.pick(['儿子', '女儿', '侄子']), phone: phone() }],
        accessNotes: rng.pick(['钥匙在邻居 302 室', '门口密码箱 0365', '物业存有备用钥匙']),
        routine: { nightStart: '22:00', nightEnd: '06:00', wakeTime: '07:30', thresholds: {} },
        awayUntil: null,
        awayReason: null,
      });
      plan.devices.push({ id: `${homeId}-fall`, homeId, kind: 'fall', room: 'bathroom' });
      plan.devices.push({ id: `${homeId}-door`, homeId, kind: 'door', room: 'entrance' });
      for (const room of ROOMS)
        plan.devices.push({ id: `${homeId}-motion-${room}`, homeId, kind: 'motion', room });
      // SPEC §1: the help button is optional; every other household has one by the bed.
      if (h % 2 === 1) plan.devices.push({ id: `${homeId}-button`, homeId, kind: 'button', room: 'bedroom' });
    }
  }
  plan.staff.push({
    id: 'dispatcher-1',
    name: person(),
    phone: phone(),
    roles: ['dispatcher'],
    gridIds: [],
    username: 'dispatcher',
    password,
  });
  plan.staff.push({
    id: 'supervisor-1',
    name: person(),
    phone: phone(),
    roles: ['supervisor'],
    gridIds: [],
    username: 'supervisor',
    password,
  });
  return plan;
}
