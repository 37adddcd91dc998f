/** The features bench/floor/server.ts can switch on (FLOOR_FEATURES), each in its cheapest form. */
export const floorFeatures = ["validate", "signal", "metrics", "log", "scope"] as const;
