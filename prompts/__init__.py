"""Every prompt the product sends, one file each; read with `assistant.agent.prompts.render`."""
