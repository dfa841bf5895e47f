/**
 * Imported first by the tasks that load kubernetes-models: its schema validator requires
 * Node's deprecated `punycode` module, and Deno prints a DEP0040 warning for it on stderr. The
 * warning is about a dependency, not the user's input, so task entry points silence it.
 *
 * @module
 */
import process from "node:process";

(process as { noDeprecation?: boolean }).noDeprecation = true;
