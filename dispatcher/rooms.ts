/**
 * The room vocabulary of SPEC §3: every device is registered in one of these rooms, and the rules key on
 * them (BATHROOM_DWELL looks for `bathroom`), so a room typed as free text must never silently disable a
 * rule. One definition for the server and the console (re-exported by api/types.ts): the ids, their zh-CN
 * and English labels, and the names people type that an import maps to them. Plain data, no I/O.
 */
export const ROOMS = ['bathroom', 'bedroom', 'kitchen', 'living', 'entrance', 'other'] as const;
export type Room = (typeof ROOMS)[number];

export const ROOM_LABELS: Record<'zh' | 'en', Record<Room, string>> = {
  zh: {
    bathroom: '卫生间',
    bedroom: '卧室',
    kitchen: '厨房',
    living: '客厅',
    entrance: '入户门',
    other: '其他',
  },
  en: {
    bathroom: 'Bathroom',
    bedroom: 'Bedroom',
    kitchen: 'Kitchen',
    living: 'Living room',
    entrance: 'Entrance',
    other: 'Other',
  },
};

/**
 * Names an admin or an older installation may have typed, by room (compared after `roomKey`: case, spaces,
 * `_` and `-` ignored). Only names that mean one room without doubt: anything else is refused by an import
 * (naming the row) and left for a person to choose.
 */
export const ROOM_ALIASES: Record<Room, readonly string[]> = {
  bathroom: [
    '卫生间',
    '浴室',
    '洗手间',
    '厕所',
    '盥洗室',
    '淋浴间',
    '洗澡间',
    'bath',
    'bathroom',
    'toilet',
    'washroom',
    'restroom',
    'wc',
    'shower',
    'showerroom',
  ],
  bedroom: ['卧室', '主卧', '次卧', '卧房', '睡房', 'bedroom', 'masterbedroom', 'sleepingroom'],
  kitchen: ['厨房', '灶间', 'kitchen'],
  living: ['客厅', '起居室', '大厅', '厅', 'living', 'livingroom', 'lounge', 'sittingroom'],
  entrance: [
    '入户门',
    '门口',
    '玄关',
    '大门',
    '进门',
    '门厅',
    '入口',
    'entrance',
    'entry',
    'door',
    'frontdoor',
    'hallway',
  ],
  other: ['其他', '其它', 'other'],
};

/** What a refused room is told: the vocabulary, with the zh names an admin would type. */
export const ROOMS_HINT = `use one of ${ROOMS.map((r) => `${r} (${ROOM_LABELS.zh[r]})`).join(', ')}`;

/** The form a typed room name is compared in: case, spaces (full-width too), `_` and `-` ignored. */
export function roomKey(text: string): string {
  return text
    .trim()
    .toLowerCase()
    .replace(/[\s\u3000_-]+/g, '');
}

const BY_KEY = new Map<string, Room>();
for (const room of ROOMS) {
  for (const name of [room, ROOM_LABELS.zh[room], ROOM_LABELS.en[room], ...ROOM_ALIASES[room]])
    BY_KEY.set(roomKey(name), room);
}

/** The vocabulary room a typed name means, or null when it means none for certain. */
export function roomFromText(text: string): Room | null {
  return BY_KEY.get(roomKey(text)) ?? null;
}

export const isRoom = (text: string): text is Room => (ROOMS as readonly string[]).includes(text);

/** Every name `roomFromText` accepts, by room (the migration maps stored rooms with the same table). */
export function roomNames(): [string, Room][] {
  return [...BY_KEY];
}
