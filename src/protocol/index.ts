// The wire protocol, platform-neutral: the server, the page, `ChatClient` and the terminal chat import it from here.
export * from "./frames";
export * from "./sizes";
export * from "./http";
export * from "./requests";
export * from "./limits";
export * from "./names";
export * from "./parse";
export * from "./text";
export * from "./emoji";
