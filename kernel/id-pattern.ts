/**
 * Device, home, grid and staff ids: the MQTT topic segment grammar (DEV-02). Dependency-free, so the
 * gateway, the dispatcher and the console's bundle share the one definition.
 */
export const ID_SOURCE = '[A-Za-z0-9_-]{1,64}';
export const ID_PATTERN = new RegExp(`^${ID_SOURCE}$`);
export const ID_RULE = 'must be 1–64 characters of A–Z, a–z, 0–9, _ or -';
