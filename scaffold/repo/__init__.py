"""The repo model: facts about a repository that every rule reads."""
