"""Tools: specs from `tools.d`, the pure call flow, executors, the dispatcher, the
approval service, spoken confirmation and the audit writer. Import from the submodules (this
package imports nothing, so `foreman.tools.request` stays light for the backends)."""
