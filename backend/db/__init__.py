"""Database: Tortoise ORM models, configuration and migrations."""
