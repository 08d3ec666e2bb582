"""field service: technicians, visits, slot offers, parts, photos, surveys

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import contactcenter.db

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('field_technicians',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('calendar_id', sa.Integer(), nullable=True),
    sa.Column('home_area', sa.String(length=64), nullable=False),
    sa.Column('hourly_rate', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('max_visits_per_day', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['calendar_id'], ['sla_calendars.id'], name=op.f('fk_field_technicians_calendar_id_sla_calendars'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_field_technicians_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_field_technicians'))
    )
    op.create_table('field_customer_sites',
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('address', sa.String(length=500), nullable=False),
    sa.Column('area', sa.String(length=64), nullable=False),
    sa.Column('created_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_field_customer_sites_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_field_customer_sites'))
    )
    op.create_table('field_technician_areas',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('area', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['field_technicians.user_id'], name=op.f('fk_field_technician_areas_user_id_field_technicians'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'area', name=op.f('pk_field_technician_areas'))
    )
    with op.batch_alter_table('field_technician_areas', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_field_technician_areas_area'), ['area'], unique=False)

    op.create_table('field_technician_skills',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('skill', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['field_technicians.user_id'], name=op.f('fk_field_technician_skills_user_id_field_technicians'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'skill', name=op.f('pk_field_technician_skills'))
    )
    with op.batch_alter_table('field_technician_skills', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_field_technician_skills_skill'), ['skill'], unique=False)

    op.create_table('field_visits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=True),
    sa.Column('follow_up_of_id', sa.Integer(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('address', sa.String(length=500), nullable=False),
    sa.Column('area', sa.String(length=64), nullable=False),
    sa.Column('problem', sa.Text(), nullable=False),
    sa.Column('skills', sa.String(length=500), nullable=False),
    sa.Column('parts_needed', sa.String(length=500), nullable=False),
    sa.Column('priority', sa.String(length=16), nullable=False),
    sa.Column('duration_minutes', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('window_start', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('window_end', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('confirmation', sa.String(length=16), nullable=False),
    sa.Column('confirmed_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('confirmed_via', sa.String(length=16), nullable=True),
    sa.Column('onsite_minutes', sa.Integer(), nullable=True),
    sa.Column('due_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('warned_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('breached_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('technician_id', sa.Integer(), nullable=True),
    sa.Column('assigned_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('travel_started_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('checked_in_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('checked_out_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('travel_minutes', sa.Integer(), nullable=True),
    sa.Column('work_minutes', sa.Integer(), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('signed_by', sa.String(length=200), nullable=False),
    sa.Column('labour_cost', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('parts_cost', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('created_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_field_visits_contract_id_contracts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_field_visits_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_field_visits_customer_id_customers')),
    sa.ForeignKeyConstraint(['follow_up_of_id'], ['field_visits.id'], name=op.f('fk_field_visits_follow_up_of_id_field_visits'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['technician_id'], ['users.id'], name=op.f('fk_field_visits_technician_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_field_visits_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_field_visits'))
    )
    with op.batch_alter_table('field_visits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_field_visits_contract_id'), ['contract_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_field_visits_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index('ix_field_visits_state_due', ['state', 'due_at'], unique=False)
        batch_op.create_index('ix_field_visits_state_window', ['state', 'window_start'], unique=False)
        batch_op.create_index('ix_field_visits_technician_window', ['technician_id', 'window_start'], unique=False)
        batch_op.create_index(batch_op.f('ix_field_visits_ticket_id'), ['ticket_id'], unique=False)

    op.create_table('field_slot_offers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('visit_id', sa.Integer(), nullable=False),
    sa.Column('nonce', sa.String(length=32), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('created_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('answered_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('chosen_slot_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['visit_id'], ['field_visits.id'], name=op.f('fk_field_slot_offers_visit_id_field_visits'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_field_slot_offers'))
    )
    with op.batch_alter_table('field_slot_offers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_field_slot_offers_visit_id'), ['visit_id'], unique=False)

    op.create_table('field_visit_parts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('visit_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_cost', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('created_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['visit_id'], ['field_visits.id'], name=op.f('fk_field_visit_parts_visit_id_field_visits'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_field_visit_parts'))
    )
    with op.batch_alter_table('field_visit_parts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_field_visit_parts_visit_id'), ['visit_id'], unique=False)

    op.create_table('field_visit_photos',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('visit_id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('content_type', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('created_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['visit_id'], ['field_visits.id'], name=op.f('fk_field_visit_photos_visit_id_field_visits'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_field_visit_photos'))
    )
    with op.batch_alter_table('field_visit_photos', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_field_visit_photos_visit_id'), ['visit_id'], unique=False)

    op.create_table('field_visit_surveys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('visit_id', sa.Integer(), nullable=False),
    sa.Column('nonce', sa.String(length=32), nullable=False),
    sa.Column('created_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('answered_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('score', sa.Integer(), nullable=True),
    sa.Column('on_time', sa.Boolean(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['visit_id'], ['field_visits.id'], name=op.f('fk_field_visit_surveys_visit_id_field_visits'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_field_visit_surveys')),
    sa.UniqueConstraint('visit_id', name=op.f('uq_field_visit_surveys_visit_id'))
    )
    op.create_table('field_offered_slots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('offer_id', sa.Integer(), nullable=False),
    sa.Column('starts_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['offer_id'], ['field_slot_offers.id'], name=op.f('fk_field_offered_slots_offer_id_field_slot_offers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_field_offered_slots'))
    )
    with op.batch_alter_table('field_offered_slots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_field_offered_slots_offer_id'), ['offer_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('field_offered_slots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_field_offered_slots_offer_id'))

    op.drop_table('field_offered_slots')
    op.drop_table('field_visit_surveys')
    with op.batch_alter_table('field_visit_photos', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_field_visit_photos_visit_id'))

    op.drop_table('field_visit_photos')
    with op.batch_alter_table('field_visit_parts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_field_visit_parts_visit_id'))

    op.drop_table('field_visit_parts')
    with op.batch_alter_table('field_slot_offers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_field_slot_offers_visit_id'))

    op.drop_table('field_slot_offers')
    with op.batch_alter_table('field_visits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_field_visits_ticket_id'))
        batch_op.drop_index('ix_field_visits_technician_window')
        batch_op.drop_index('ix_field_visits_state_window')
        batch_op.drop_index('ix_field_visits_state_due')
        batch_op.drop_index(batch_op.f('ix_field_visits_customer_id'))
        batch_op.drop_index(batch_op.f('ix_field_visits_contract_id'))

    op.drop_table('field_visits')
    with op.batch_alter_table('field_technician_skills', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_field_technician_skills_skill'))

    op.drop_table('field_technician_skills')
    with op.batch_alter_table('field_technician_areas', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_field_technician_areas_area'))

    op.drop_table('field_technician_areas')
    op.drop_table('field_customer_sites')
    op.drop_table('field_technicians')
