/**
 * What `/docs` says of each operation (OPS-02, OPS-05): its tag, a one-line summary and a description, kept
 * in one table beside the routes so a route file stays about behaviour. `buildApp` lays each entry onto its
 * route as it is registered; test/dispatcher/openapi.test.ts fails on an operation that has none.
 */

export interface OperationDoc {
  tag: string;
  summary: string;
  description: string;
}

/** Tags in the order `/docs` shows them, each with what it groups. */
export const DOC_TAGS: { name: string; description: string }[] = [
  { name: 'session', description: 'Log in and out; who is logged in.' },
  {
    name: 'alerts',
    description: 'The alert queue, one alert with its evidence and history, and its lifecycle.',
  },
  {
    name: 'dispatch',
    description: 'What the dispatch room watches beside the queue: duty, channels, health.',
  },
  {
    name: 'households',
    description: 'The household file (一户一档): residents, contacts, routine, away status.',
  },
  { name: 'registry', description: 'Grids and staff.' },
  {
    name: 'roster',
    description: 'The duty roster: weekly rotation, overrides, the week as routing reads it.',
  },
  { name: 'devices', description: 'Provisioning, rooms, disabling and secrets of devices.' },
  { name: 'import-export', description: 'The registry as JSON or CSV files.' },
  { name: 'reports', description: 'SLA, today’s figures, device health.' },
  { name: 'push', description: 'Web Push subscriptions of responder phones.' },
  {
    name: 'escalation',
    description:
      'Each community’s escalation policy: the ladder’s steps, minutes, who is told, the on-site promise.',
  },
];

const d = (tag: string, summary: string, description: string): OperationDoc => ({
  tag,
  summary,
  description,
});

/** By `METHOD url` as fastify registers it (`:id` parameters). */
export const OPERATION_DOCS: Record<string, OperationDoc> = {
  'POST /api/auth/login': d(
    'session',
    'Log in',
    'Checks a username and password and starts a session: the token comes back in the body and as an HttpOnly cookie. Limited to 10 attempts a minute per address and account.',
  ),
  'POST /api/auth/logout': d('session', 'Log out', 'Ends this session (the cookie or the bearer token).'),
  'GET /api/session': d(
    'session',
    'This session',
    'Who is logged in, with roles, permissions, grids and the community settings the console needs.',
  ),
  'GET /api/me': d('session', 'Me', 'The staff record of whoever is logged in.'),
  'GET /api/alerts': d(
    'alerts',
    'List alerts',
    'Alerts in the caller’s scope (a responder’s grids, a desk’s communities), newest first, filtered by state or grid, with the change sequence live updates continue from and the service clock’s now.',
  ),
  'GET /api/alerts/:id': d(
    'alerts',
    'One alert',
    'The alert with its evidence, its history (every transition: who, when, which channel) and every notice delivery attempt.',
  ),
  'POST /api/alerts/:id/:action': d(
    'alerts',
    'Act on an alert',
    'One lifecycle action: accept, en-route, on-site, resolve (outcome and visit note), cancel (reason), assign (staffId), note (text), call (to, result) or decline (reason: a responder who cannot go passes the alert on). The body depends on the action; accept, en-route and on-site take none. An action the alert’s state does not allow answers 409 with the reason.',
  ),
  'GET /api/duty': d(
    'dispatch',
    'On duty now',
    'Per grid, the shift in force and its ordered responders (first = primary), overrides applied.',
  ),
  'GET /api/duty/gaps': d(
    'dispatch',
    'Duty gaps',
    'Grids with nobody on duty in the current or the next shift, so the dispatch room is warned before it starts.',
  ),
  'GET /api/duty/handover': d(
    'dispatch',
    'Shift handover',
    'Open alerts the incoming shift inherits, with who holds each.',
  ),
  'GET /api/maintenance': d(
    'dispatch',
    'Maintenance queue',
    'Open technical alerts (device offline, low battery), each due the next working day.',
  ),
  'GET /api/notify/health': d(
    'dispatch',
    'Notice channels',
    'Per channel (live page, MQTT, webhook, push), recent deliveries and failures, so a failing channel shows on the dispatch screen.',
  ),
  'GET /api/system/health': d(
    'dispatch',
    'System health',
    'The event log, storage and rules pipeline as the dispatch screen shows them.',
  ),
  'GET /api/grids': d('registry', 'List grids', 'Every grid with its community and grid leader.'),
  'POST /api/grids': d('registry', 'Create or update a grid', 'Writes a grid by id; audited.'),
  'GET /api/staff': d('registry', 'List staff', 'Staff with roles and grids; never a password.'),
  'POST /api/staff': d(
    'registry',
    'Create a staff member',
    'A person with roles, grids and login; the password must meet the rule for their roles.',
  ),
  'PATCH /api/staff/:id': d(
    'registry',
    'Change a staff member',
    'Name, phone, roles, grids, password or disabled. A change of rights ends the person’s live sessions at once.',
  ),
  'GET /api/households': d(
    'households',
    'List households',
    'Households of the caller’s scope, without access notes.',
  ),
  'POST /api/households': d(
    'households',
    'Create or update a household',
    'The household file by id: address, residents, emergency contacts in order, access notes, routine and thresholds. Every problem is named by field.',
  ),
  'GET /api/households/:id': d(
    'households',
    'One household file',
    'The file with its devices; access notes only when asked for, and that read is audited.',
  ),
  'POST /api/households/:id/away': d(
    'households',
    'Mark away',
    'The resident is away (hospital, family) until a future date: activity rules pause until then.',
  ),
  'DELETE /api/households/:id/away': d('households', 'Back home', 'Ends the away status now.'),
  'GET /api/households/:id/coverage': d(
    'households',
    'Who would be told now',
    'The ordered responders an alert of this household would go to at this instant: the same computation routing uses.',
  ),
  'GET /api/households/:id/baseline': d(
    'households',
    'Learned routine',
    'The household’s learned routine (usual wake time, quiet hours) and whether the rules use it.',
  ),
  'GET /api/households/:id/timeline': d(
    'households',
    'Activity timeline',
    'Events and alerts of the household over a period (7 days by default) for the file’s chart.',
  ),
  'GET /api/audit': d(
    'registry',
    'Audit log',
    'Recorded actions (who, what, when), filtered by actor, action or target.',
  ),
  'GET /api/roster': d(
    'roster',
    'Roster',
    'The weekly rotation lines and the overrides of the caller’s grids.',
  ),
  'POST /api/roster': d(
    'roster',
    'Set a grid’s rotation',
    'Replaces a grid’s weekly rotation: per shift and weekdays, the ordered responders.',
  ),
  'GET /api/roster/week': d(
    'roster',
    'A roster week',
    'Per day and shift of one week, the rotation, the overrides and who is on duty, as routing reads it.',
  ),
  'POST /api/roster/overrides': d(
    'roster',
    'Add an override',
    'Leave (who is off), cover (who stands in) or swap (both) for one date and shift.',
  ),
  'DELETE /api/roster/overrides/:id': d('roster', 'Withdraw an override', 'Routing follows at once.'),
  'POST /api/devices': d(
    'devices',
    'Provision a device',
    'Registers a device in a household and a room of the vocabulary; its MQTT secret is in the answer this once.',
  ),
  'GET /api/devices/:id': d(
    'devices',
    'One device',
    'Kind, room, presence, battery, rejected messages; never the secret.',
  ),
  'POST /api/devices/:id/room': d(
    'devices',
    'Move a device',
    'Sets the device’s room (a room of the vocabulary).',
  ),
  'POST /api/devices/:id/disable': d(
    'devices',
    'Disable a device',
    'Its next login gets CONNACK 5 and its live session ends now.',
  ),
  'POST /api/devices/:id/enable': d('devices', 'Enable a device', 'It may log in again.'),
  'GET /api/escalation-policies': d(
    'escalation',
    'Escalation policies',
    'The default ladder (SPEC §6) and each community’s own policy, with when and by whom it was last set.',
  ),
  'PUT /api/escalation-policies/:community': d(
    'escalation',
    'Set a community’s escalation policy',
    'Validated as a whole (every problem reported at once). Alerts already running keep the policy they were raised under (ESC-02); admin only; audited.',
  ),
  'POST /api/devices/:id/rotate-secret': d(
    'devices',
    'Rotate a secret',
    'A new secret, in the answer this once; the old one stops working at once, its live session included.',
  ),
  'GET /api/registry/export': d(
    'import-export',
    'Export the registry (JSON)',
    'Grids, households (with access notes: audited), staff without passwords, the roster with its overrides, devices without secrets.',
  ),
  'GET /api/registry/export/:kind': d(
    'import-export',
    'Export one kind (CSV)',
    'One of grids, households, staff, roster, overrides or devices as CSV (UTF-8 with BOM, formula cells neutralised).',
  ),
  'POST /api/registry/import': d(
    'import-export',
    'Import the registry (JSON)',
    'Checks the whole file first and answers every problem of every row at once (row, field, message in both languages); writes nothing unless all are good.',
  ),
  'POST /api/registry/import/:kind': d(
    'import-export',
    'Import one kind (CSV)',
    'As the JSON import, for one CSV file; rows are numbered as a spreadsheet shows them.',
  ),
  'GET /api/reports/sla': d(
    'reports',
    'SLA report',
    'Per grid and period: safety alerts, how many were accepted within 3 min and reached on site within 15 min, breaches, false alarms; CSV with format=csv.',
  ),
  'GET /api/reports/today': d(
    'reports',
    'Today’s figures',
    'Since local midnight: safety alerts raised, accepted within 3 min and on site within 15 min (each as a count of the alerts that reached that point), breaches and open alerts.',
  ),
  'GET /api/reports/devices': d(
    'reports',
    'Device health',
    'Offline devices, low batteries, devices rejecting messages and rooms that could not be mapped.',
  ),
  'GET /api/devices': d(
    'devices',
    'List devices across households',
    'Every live device of the households this person may see, with its grid and address; `filter` narrows it to offline, low_battery, rejecting, never_seen or disabled devices, `grid` to one grid, `household` to one household. At most `limit` devices (2,000 by default, 10,000 at most), in order of id; `more` says when more match.',
  ),
  'PATCH /api/devices/:id': d(
    'devices',
    'Correct a device',
    'Changes its room (from the room vocabulary) or its registered kind; a new kind ends its session so the next login reads it. Audited with the old and new values.',
  ),
  'POST /api/grids/:id/retire': d(
    'registry',
    'Retire a grid',
    'Soft delete (DATA-04): the grid leaves every list and routing; alerts and audit entries that name it stay readable and its id is never reused. 409 while it has households.',
  ),
  'POST /api/households/:id/retire': d(
    'households',
    'Retire a household',
    'Soft delete (DATA-04) of the household and its devices (refused at connect from now); its file, alerts and visits stay readable. 409 while it has open alerts.',
  ),
  'POST /api/staff/:id/retire': d(
    'registry',
    'Retire a person',
    'Soft delete (DATA-04): the account is disabled and logged out, leaves the staff list, the roster pickers and routing; what they did stays in alert histories and the audit log. Nobody retires themselves.',
  ),
  'POST /api/devices/:id/retire': d(
    'devices',
    'Retire a device',
    'Soft delete (DATA-04): the device is disabled, its session ends and it leaves every list; its events and the alerts they raised stay.',
  ),
  'GET /api/push/key': d('push', 'VAPID public key', 'The key a phone subscribes with.'),
  'POST /api/push/subscriptions': d(
    'push',
    'Subscribe this phone to alert notices',
    'Stores the phone’s Web Push subscription for the logged-in responder.',
  ),
  'DELETE /api/push/subscriptions': d(
    'push',
    'Unsubscribe this phone',
    'Removes the phone’s Web Push subscription.',
  ),
  'POST /api/push/receipts': d(
    'push',
    'Notice shown',
    'The phone’s service worker reports that a notice was shown, recorded as delivered.',
  ),
};
