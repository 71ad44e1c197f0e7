"""The Piccolo app: its tables and the migrations folder at the top of the repository."""

from pathlib import Path

from piccolo.conf.apps import AppConfig, table_finder

APP_CONFIG = AppConfig(
    app_name="app",
    migrations_folder_path=str(Path(__file__).resolve().parent.parent / "migrations"),
    table_classes=table_finder(modules=["app.tables"], exclude_imported=True),
    migration_dependencies=[],
    commands=[],
)
