// react-bundle.js is the entry that the React tests bundle with esbuild
// (from the lockfile's devDependencies) into one ES module: React 19 and
// react-dom/client sharing one React, in development mode so that
// StrictMode mounts effects twice. The test page maps "react" to the
// bundle with an import map, so /rtkit/react.js is tested as served.
import * as React from "react";
import { createRoot } from "react-dom/client";

export const {
  Children, Component, Fragment, StrictMode, createContext, createElement, memo, startTransition, use,
  useCallback, useContext, useEffect, useLayoutEffect, useMemo, useReducer, useRef, useState,
  useSyncExternalStore, version,
} = React;
export { createRoot };
export default React;
